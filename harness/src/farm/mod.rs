//! Boards from a labgrid farm: `labgrid:PLACE` or `labgrid:tag=value,...` (any
//! free place whose tags match), `*N` for N such places. The coordinator is
//! asked over gRPC (labgrid 25 and later) for a reservation, which is polled
//! until the places are allocated, then they are acquired; each place's
//! `NetworkSerialPort` (ser2net, RFC 2217) becomes the board's port, and a place
//! tag `ip=` says where the board is on the network. [`Farm::release`] gives
//! every place back and cancels the reservations; callers must reach it on every
//! exit path (labgrid keeps a place acquired by a client that went away).
//!
//! ```no_run
//! use hil::farm::{Farm, FarmOptions, FarmSpec};
//!
//! # async fn demo() -> Result<(), hil::farm::FarmError> {
//! let spec: FarmSpec = "labgrid:board=esp8266*2".parse()?;
//! let farm = Farm::connect(&FarmOptions::new("127.0.0.1:20408")).await?;
//! let places = farm.acquire(&spec, &mut |event| println!("{event}")).await;
//! // ... use places?.iter().map(|p| &p.port) ...
//! farm.release().await;
//! # Ok(())
//! # }
//! ```

mod client;
pub mod proto;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use client::{Farm, FarmOptions};

use crate::serial::PortSpec;

/// Where labgrid's coordinator listens unless told otherwise (labgrid-client's
/// default).
pub const DEFAULT_COORDINATOR: &str = "127.0.0.1:20408";

/// What can go wrong with a farm.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum FarmError {
    /// A `labgrid:` spec that does not parse.
    #[error("`{given}` is not a labgrid board: {problem}")]
    #[diagnostic(
        code(hil::farm::bad_spec),
        help("a farm board is labgrid:PLACE, labgrid:TAG=VALUE[,TAG=VALUE...] or either followed by *N for N places, e.g. labgrid:board=esp8266*4")
    )]
    BadSpec {
        /// What was given.
        given: String,
        /// What is wrong.
        problem: String,
    },
    /// The coordinator cannot be reached.
    #[error("labgrid's coordinator at {addr} cannot be reached: {reason}")]
    #[diagnostic(
        code(hil::farm::coordinator_down),
        help("check the address (labgrid's LG_COORDINATOR), that labgrid-coordinator (labgrid 25 or later, gRPC) runs there, and the network between")
    )]
    CoordinatorDown {
        /// host:port.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The coordinator refused or failed a request.
    #[error("labgrid's coordinator at {addr} refused {request}: {message}")]
    #[diagnostic(
        code(hil::farm::refused),
        help("see labgrid-coordinator's log; `labgrid-client places` shows the places")
    )]
    Refused {
        /// host:port.
        addr: String,
        /// The request.
        request: &'static str,
        /// The coordinator's message.
        message: String,
    },
    /// No place matches the spec at all.
    #[error("no place on {addr} matches {spec}")]
    #[diagnostic(
        code(hil::farm::no_place),
        help("`labgrid-client places` and `labgrid-client -p PLACE show` list the places and their tags")
    )]
    NoPlace {
        /// host:port.
        addr: String,
        /// The spec.
        spec: String,
    },
    /// Fewer places match than asked for.
    #[error("{spec} asks for {wanted} places but only {found} on {addr} match")]
    #[diagnostic(
        code(hil::farm::too_few),
        help("ask for fewer (*N), or tag more places")
    )]
    TooFew {
        /// host:port.
        addr: String,
        /// The spec.
        spec: String,
        /// Asked for.
        wanted: usize,
        /// Matching places.
        found: usize,
    },
    /// A place is held and waiting was not wanted.
    #[error("place {place} is held by {holder}")]
    #[diagnostic(
        code(hil::farm::held),
        help("wait for it (leave out the no-wait option), or ask its holder to release it (`labgrid-client -p {place} release`)")
    )]
    Held {
        /// The place.
        place: String,
        /// Who holds it (labgrid's `host/user`), or the reservation's owner.
        holder: String,
    },
    /// A reservation expired or became invalid.
    #[error("the reservation for {spec} became {state}")]
    #[diagnostic(
        code(hil::farm::reservation),
        help("a place was deleted or the reservation was not polled in time; try again")
    )]
    Reservation {
        /// The spec.
        spec: String,
        /// `expired` or `invalid`.
        state: &'static str,
    },
    /// An acquired place has no network serial port.
    #[error("place {place} has no NetworkSerialPort with a TCP port after acquiring it")]
    #[diagnostic(
        code(hil::farm::no_serial),
        help("the place needs a match for its board's serial port (`labgrid-client -p {place} add-match 'EXPORTER/GROUP/NetworkSerialPort'`) exported by a running labgrid-exporter")
    )]
    NoSerial {
        /// The place.
        place: String,
    },
    /// A place tag `ip=` that is no IP address.
    #[error("place {place} has tag ip={value}, which is not an IP address")]
    #[diagnostic(
        code(hil::farm::bad_ip),
        help("set it to the board's address as the lab sees it: `labgrid-client -p {place} set-tags ip=192.168.10.21`")
    )]
    BadIp {
        /// The place.
        place: String,
        /// The tag's value.
        value: String,
    },
}

/// Which places to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// One place by name.
    Named(String),
    /// Any free places whose tags include all of these.
    Tags(BTreeMap<String, String>),
}

/// A `labgrid:` board spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarmSpec {
    /// Which places.
    pub wanted: Wanted,
    /// How many (1 for a named place).
    pub count: usize,
}

impl FarmSpec {
    /// The reservation filter labgrid's scheduler matches places against (a
    /// place's name is its tag `name`).
    pub(crate) fn filter(&self) -> BTreeMap<String, String> {
        match &self.wanted {
            Wanted::Named(name) => BTreeMap::from([("name".to_string(), name.clone())]),
            Wanted::Tags(tags) => tags.clone(),
        }
    }

    /// Whether a place with `name` and `tags` matches.
    pub(crate) fn matches(
        &self,
        name: &str,
        tags: &std::collections::HashMap<String, String>,
    ) -> bool {
        self.filter()
            .iter()
            .all(|(key, value)| (key == "name" && value == name) || tags.get(key) == Some(value))
    }
}

/// labgrid's tag keys: a lowercase letter, then lowercase letters, digits and
/// underscores (at least two characters).
fn tag_key_ok(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && key.len() >= 2
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl FromStr for FarmSpec {
    type Err = FarmError;

    fn from_str(s: &str) -> Result<FarmSpec, FarmError> {
        let bad = |problem: &str| FarmError::BadSpec {
            given: s.to_string(),
            problem: problem.to_string(),
        };
        let rest = s
            .strip_prefix("labgrid:")
            .ok_or_else(|| bad("it does not start with labgrid:"))?;
        let (body, count) = match rest.rsplit_once('*') {
            Some((body, n)) => {
                let count: usize = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| bad("the count after * is a number from 1 to 64"))?;
                (body, count)
            }
            None => (rest, 1),
        };
        if body.is_empty() {
            return Err(bad("it names no place and no tag"));
        }
        if !body.contains('=') {
            if count != 1 {
                return Err(bad("a place by name is one place; give tags for several"));
            }
            if body.contains([',', ' ', '/']) {
                return Err(bad("a place name has no commas, spaces or slashes"));
            }
            return Ok(FarmSpec {
                wanted: Wanted::Named(body.to_string()),
                count,
            });
        }
        let mut tags = BTreeMap::new();
        for pair in body.split(',') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("tags are TAG=VALUE, separated by commas"))?;
            if !tag_key_ok(key) {
                return Err(bad(
                    "a tag's name is a lowercase letter then lowercase letters, digits or _ (labgrid's rule)",
                ));
            }
            if value.is_empty() {
                return Err(bad("a tag needs a value"));
            }
            tags.insert(key.to_string(), value.to_string());
        }
        Ok(FarmSpec {
            wanted: Wanted::Tags(tags),
            count,
        })
    }
}

impl fmt::Display for FarmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.wanted {
            Wanted::Named(name) => write!(f, "labgrid:{name}")?,
            Wanted::Tags(tags) => {
                let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "labgrid:{}", pairs.join(","))?;
            }
        }
        if self.count > 1 {
            write!(f, "*{}", self.count)?;
        }
        Ok(())
    }
}

/// A place acquired for this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPlace {
    /// Its name.
    pub name: String,
    /// Its board's serial port, `rfc2217://host:port`.
    pub port: PortSpec,
    /// The rate the exporter serves it at initially.
    pub speed: Option<u32>,
    /// Where the board is on the network (the place's tag `ip=`), if recorded.
    pub device_ip: Option<IpAddr>,
}

/// What happens while places are sought, for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FarmEvent {
    /// Connected to the coordinator.
    Connected {
        /// host:port.
        addr: String,
    },
    /// A matching place is held by someone else: waiting for it.
    Waiting {
        /// The place.
        place: String,
        /// Who holds it (or whose reservation it is).
        holder: String,
    },
    /// A place was acquired.
    Acquired(HeldPlace),
    /// A place was released.
    Released {
        /// The place.
        place: String,
    },
}

impl fmt::Display for FarmEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FarmEvent::Connected { addr } => write!(f, "labgrid coordinator {addr}"),
            FarmEvent::Waiting { place, holder } => {
                write!(f, "waiting for place {place} held by {holder}")
            }
            FarmEvent::Acquired(place) => {
                write!(f, "acquired place {}: {}", place.name, place.port)?;
                if let Some(ip) = place.device_ip {
                    write!(f, ", board at {ip}")?;
                }
                Ok(())
            }
            FarmEvent::Released { place } => write!(f, "released place {place}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let named: FarmSpec = "labgrid:esp-1".parse().unwrap();
        assert_eq!(named.wanted, Wanted::Named("esp-1".into()));
        assert_eq!(named.count, 1);
        assert_eq!(named.to_string(), "labgrid:esp-1");
        let tags: FarmSpec = "labgrid:board=esp8266,room=b2*4".parse().unwrap();
        assert_eq!(tags.count, 4);
        assert_eq!(tags.to_string(), "labgrid:board=esp8266,room=b2*4");
        assert_eq!(
            tags.filter(),
            BTreeMap::from([
                ("board".to_string(), "esp8266".to_string()),
                ("room".to_string(), "b2".to_string())
            ])
        );
        for bad in [
            "esp-1",
            "labgrid:",
            "labgrid:esp-1*2",
            "labgrid:Board=x",
            "labgrid:b=x",
            "labgrid:board=",
            "labgrid:board=x*0",
            "labgrid:board=x*many",
            "labgrid:a,b",
        ] {
            assert!(bad.parse::<FarmSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_match_as_labgrid_tags() {
        let spec: FarmSpec = "labgrid:board=esp8266".parse().unwrap();
        let tags = std::collections::HashMap::from([
            ("board".to_string(), "esp8266".to_string()),
            ("ip".to_string(), "10.0.0.2".to_string()),
        ]);
        assert!(spec.matches("p1", &tags));
        assert!(!spec.matches("p1", &Default::default()));
        let named: FarmSpec = "labgrid:p1".parse().unwrap();
        assert!(named.matches("p1", &Default::default()));
        assert!(!named.matches("p2", &tags));
    }
}
