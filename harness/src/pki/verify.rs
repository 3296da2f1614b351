//! An independent verdict on a served chain under web PKI rules (rustls-webpki),
//! used to check that every profile is what it claims to be.

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};

use super::{Certificate, Outcome, Profile};

/// What web PKI rules decided, and why when they refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPkiVerdict {
    /// Accepted or refused.
    pub outcome: Outcome,
    /// webpki's reason for a refusal.
    pub reason: Option<String>,
}

/// Verifies `chain` (first certificate as the end entity, the rest as
/// intermediates) against `anchors` for `host` at time `at`, as a TLS server.
///
/// ```
/// use hil::pki::{verify_web_pki, Catalogue, Outcome, ProfileId};
/// use time::macros::datetime;
///
/// let at = datetime!(2026-03-01 0:00 UTC);
/// let catalogue = Catalogue::generate(at)?;
/// let p = catalogue.profile(ProfileId::WrongSan)?;
/// let verdict = verify_web_pki(p.broker_chain(), p.device_anchors(), p.host(), at);
/// assert_eq!(verdict.outcome, Outcome::Refuses);
/// # Ok::<(), hil::Error>(())
/// ```
pub fn verify_web_pki(
    chain: &[Certificate],
    anchors: &[Certificate],
    host: &str,
    at: OffsetDateTime,
) -> WebPkiVerdict {
    match check(chain, anchors, host, at) {
        Ok(()) => WebPkiVerdict {
            outcome: Outcome::Connects,
            reason: None,
        },
        Err(reason) => WebPkiVerdict {
            outcome: Outcome::Refuses,
            reason: Some(reason),
        },
    }
}

fn check(
    chain: &[Certificate],
    anchors: &[Certificate],
    host: &str,
    at: OffsetDateTime,
) -> Result<(), String> {
    let ders: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der()))
        .collect();
    let (leaf, intermediates) = ders.split_first().ok_or("empty chain")?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|c| CertificateDer::from(c.der()))
        .collect();
    let anchors = anchor_ders
        .iter()
        .map(|d| webpki::anchor_from_trusted_cert(d).map_err(|e| format!("anchor: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let end_entity = EndEntityCert::try_from(leaf).map_err(|e| short(&e))?;
    let seconds =
        u64::try_from(at.unix_timestamp()).map_err(|_| "lab clock before 1970".to_owned())?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| short(&e))?;
    let name = ServerName::try_from(host).map_err(|e| format!("host name: {e}"))?;
    end_entity
        .verify_is_valid_for_subject_name(&name)
        .map_err(|e| short(&e))
}

/// webpki's error name without the (long) context it carries, e.g. `CertExpired`.
fn short(error: &webpki::Error) -> String {
    let full = format!("{error:?}");
    let end = full.find([' ', '(', '{']).unwrap_or(full.len());
    full[..end].to_owned()
}

impl Profile {
    /// The web PKI verdict on this profile at its own lab clock.
    pub fn web_pki_verdict(&self) -> WebPkiVerdict {
        verify_web_pki(
            self.broker_chain(),
            self.device_anchors(),
            self.host(),
            self.at(),
        )
    }
}
