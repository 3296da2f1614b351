//! The world of one scenario: its board lease, its slice of the lab (the policy
//! for its device's address), its console session and its cursors on the
//! timeline. Given steps arrange, When steps act and move the cursor the Then
//! steps measure "within" from.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::board::Lease;
use super::checks::{Deferred, StepFailure};
use super::context::RunContext;
use super::firmware::FirmwareSource;
use super::steps::{OnlyTls, Step};
use super::suite::ScenarioInfo;
use crate::lab::{
    BrokerPolicy, Credentials, DevicePolicy, LabMqttClient, NtpPolicy, TlsVersion, TlsVersions,
};
use crate::logprofile::{LogProfile, SemanticEvent};
use crate::pki::ProfileId;
use crate::provisioning::{self, ProvisionOptions};
use crate::serial::session::{ConsoleSession, SessionOptions};
use crate::timeline::{Cursor, EventKind, HarnessEvent, Source};

/// Everything one scenario holds. Created empty by cucumber; the run's `before`
/// hook gives it the run context.
#[derive(Default)]
pub struct ScenarioWorld {
    pub(crate) ctx: Option<Arc<RunContext>>,
    pub(crate) info: Option<ScenarioInfo>,
    pub(crate) lease: Option<Lease>,
    pub(crate) policy: DevicePolicy,
    pub(crate) presented: Option<ProfileId>,
    pub(crate) provision: bool,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) log: Option<Arc<LogProfile>>,
    pub(crate) session: Option<ConsoleSession>,
    pub(crate) firmware: Option<String>,
    pub(crate) started: Option<Instant>,
    pub(crate) overhead: Duration,
    pub(crate) start: Option<Cursor>,
    /// Where the last When step acted: "within" deadlines count from here.
    pub(crate) act: Option<(Cursor, Instant)>,
    pub(crate) deferred: Vec<Deferred>,
    /// Where the harness last reset the board: one boot follows, more are reboots.
    pub(crate) reset_at: Option<Cursor>,
    pub(crate) failure: Option<StepFailure>,
    pub(crate) failed_step: Option<(String, usize)>,
    pub(crate) infrastructure: bool,
    pub(crate) mqtt: Option<LabMqttClient>,
    pub(crate) artifacts: Option<PathBuf>,
}

impl std::fmt::Debug for ScenarioWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioWorld")
            .field("scenario", &self.info.as_ref().map(|i| i.location()))
            .field("device", &self.device())
            .field("firmware", &self.firmware)
            .finish_non_exhaustive()
    }
}

impl cucumber::World for ScenarioWorld {
    type Error = std::convert::Infallible;

    async fn new() -> Result<Self, Self::Error> {
        Ok(ScenarioWorld {
            provision: true,
            ..ScenarioWorld::default()
        })
    }
}

/// What firmware a scenario wants on its board.
enum Wanted {
    /// The run's (`--firmware`), if any.
    RunFirmware,
    /// This one (a variant or an image path).
    Firmware(String),
    /// Whatever it holds: a flash step follows.
    Nothing,
}

/// A step that cannot go on, and whether the harness (not the firmware) is to blame.
pub(crate) type StepResult = Result<(), StepFailure>;

impl ScenarioWorld {
    pub(crate) fn ctx(&self) -> Result<Arc<RunContext>, StepFailure> {
        self.ctx
            .clone()
            .ok_or_else(|| StepFailure::infrastructure("the scenario has no run context"))
    }

    pub(crate) fn device(&self) -> Option<IpAddr> {
        self.lease.as_ref().map(|l| l.device())
    }

    pub(crate) fn log(&self) -> Arc<LogProfile> {
        match (&self.log, &self.ctx) {
            (Some(log), _) => log.clone(),
            (None, Some(ctx)) => ctx.log_profile.clone(),
            (None, None) => Arc::new(LogProfile::reference()),
        }
    }

    /// The cursor and instant "within" counts from.
    pub(crate) fn act_point(&self, ctx: &RunContext) -> (Cursor, Instant) {
        self.act
            .or(self.start.zip(self.started))
            .unwrap_or_else(|| (ctx.timeline.cursor(), Instant::now()))
    }

    fn note(&self, ctx: &RunContext, event: HarnessEvent) {
        ctx.timeline.record(
            Source::Harness,
            self.device(),
            EventKind::Harness { what: event },
        );
    }

    /// Runs one step (Given, When or Then alike: the text says which).
    pub(crate) async fn execute(&mut self, text: &str) -> StepResult {
        let ctx = self.ctx()?;
        let step =
            super::steps::parse(text).map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
        self.note(
            &ctx,
            HarnessEvent::StepStarted {
                step: text.to_owned(),
                line: 0,
            },
        );
        self.check_deferred(&ctx)?;
        let result = match step {
            Step::BoardUnderTest => self.ensure_board(&ctx, Wanted::RunFirmware).await,
            Step::VirtualBoardRunning(fw) => self.ensure_board(&ctx, Wanted::Firmware(fw)).await,
            Step::FlashedWith(image) => {
                self.mark_act(&ctx);
                self.ensure_board(&ctx, Wanted::Nothing).await?;
                self.flash(&ctx, FirmwareSource::Image(image.into())).await
            }
            Step::NotProvisioned => {
                self.provision = false;
                Ok(())
            }
            Step::UsesLogProfile(name) => {
                let profile = LogProfile::load(&name, &ctx.log_profiles_dir)
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
                self.log = Some(Arc::new(profile));
                Ok(())
            }
            Step::ProvisionedCredentials { username, password } => {
                self.credentials = Some((username, password));
                Ok(())
            }
            Step::BrokerPresents(id) => {
                let profile = ctx
                    .catalogue
                    .profile(id)
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
                self.policy.profile = Some(Arc::new(profile.clone()));
                self.presented = Some(id);
                self.push_policy(&ctx).await
            }
            Step::BrokerRequiresSni => self.broker(&ctx, BrokerPolicy::SniRequired).await,
            Step::BrokerRequiresClientCert => {
                self.broker(&ctx, BrokerPolicy::ClientCertRequired).await
            }
            Step::BrokerTrustsOtherClientCa => {
                self.broker(&ctx, BrokerPolicy::ClientCertWrongCa).await
            }
            Step::BrokerOnlyTls(version) => {
                self.policy.tls.versions = TlsVersions::only(match version {
                    OnlyTls::V10 => TlsVersion::Tls10,
                    OnlyTls::V11 => TlsVersion::Tls11,
                    OnlyTls::V12 => TlsVersion::Tls12,
                    OnlyTls::V13 => TlsVersion::Tls13,
                });
                self.push_policy(&ctx).await
            }
            Step::BrokerIgnoresMfln => self.broker(&ctx, BrokerPolicy::MflnIgnored).await,
            Step::BrokerRequiresCredentials { username, password } => {
                self.policy.mqtt.credentials = Some(Credentials::new(username, password));
                self.push_policy(&ctx).await
            }
            Step::BrokerNotAuthorized => self.broker(&ctx, BrokerPolicy::MqttNotAuthorized).await,
            Step::BrokerStallsAfterHello => self.broker(&ctx, BrokerPolicy::StallAfterHello).await,
            Step::BrokerClosesMidHandshake => {
                self.broker(&ctx, BrokerPolicy::CloseMidHandshake).await
            }
            Step::BrokerNoConnack => self.broker(&ctx, BrokerPolicy::NoConnack).await,
            Step::NtpSkew(skew) => {
                self.policy.ntp = NtpPolicy::Skewed(skew);
                self.push_policy(&ctx).await
            }
            Step::NtpFixed(at) => {
                self.policy.ntp = NtpPolicy::Fixed(at);
                self.push_policy(&ctx).await
            }
            Step::NtpSilent => {
                self.policy.ntp = NtpPolicy::Silent;
                self.push_policy(&ctx).await
            }
            Step::DnsDoesNotResolve(host) => {
                self.policy
                    .dns
                    .unresolved
                    .insert(host.trim_end_matches('.').to_ascii_lowercase());
                self.push_policy(&ctx).await
            }
            Step::DnsResolvesToLab(host) => {
                ctx.lab.map_name(&host);
                Ok(())
            }
            Step::Boots => self.boot(&ctx).await,
            Step::BrokerPublishes { payload, topic } => {
                self.mark_act(&ctx);
                self.publish(&ctx, &topic, payload.into_bytes()).await
            }
            Step::BrokerPublishesSized { bytes, topic } => {
                self.mark_act(&ctx);
                let payload: Vec<u8> = (0..bytes).map(|i| b'a' + (i % 26) as u8).collect();
                self.publish(&ctx, &topic, payload).await
            }
            Step::BrokerDrops => {
                self.mark_act(&ctx);
                let device = self.require_device()?;
                ctx.lab
                    .drop_connections(device)
                    .await
                    .map(|_| ())
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))
            }
            Step::BrokerRestarts => {
                self.mark_act(&ctx);
                let device = self.require_device()?;
                ctx.lab
                    .restart_broker(device, ctx.restart_downtime)
                    .await
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))
            }
            Step::Pass(duration) => {
                self.mark_act(&ctx);
                // The scenario asked for time to pass; there is no event to wait on.
                tokio::time::sleep(duration).await;
                Ok(())
            }
            other => self.then(&ctx, other).await,
        };
        if let Err(failure) = &result {
            self.note(
                &ctx,
                HarnessEvent::StepFailed {
                    expectation: failure.expectation.clone(),
                    inconclusive: false,
                },
            );
        }
        result
    }

    fn mark_act(&mut self, ctx: &RunContext) {
        self.act = Some((ctx.timeline.cursor(), Instant::now()));
    }

    pub(crate) fn require_device(&self) -> Result<IpAddr, StepFailure> {
        self.device().ok_or_else(|| {
            StepFailure::infrastructure(
                "no board yet: start the scenario with `Given the board under test`",
            )
        })
    }

    async fn broker(&mut self, ctx: &RunContext, policy: BrokerPolicy) -> StepResult {
        policy.apply(&mut self.policy);
        self.push_policy(ctx).await
    }

    /// The lab applies the policy to this scenario's device from its next
    /// connection, query or request on.
    async fn push_policy(&mut self, ctx: &RunContext) -> StepResult {
        if self.lease.is_none() {
            self.ensure_board(ctx, Wanted::RunFirmware).await?;
        }
        let device = self.require_device()?;
        let mut policy = self.policy.clone();
        if policy.profile.is_none() {
            policy.profile = Some(ctx.default_profile.clone());
        }
        ctx.lab.policies().set(device, policy);
        Ok(())
    }

    /// Leases a board (once per scenario) and makes sure it holds the firmware
    /// the scenario wants.
    async fn ensure_board(&mut self, ctx: &RunContext, wanted: Wanted) -> StepResult {
        let begun = Instant::now();
        if self.lease.is_none() {
            let lease = ctx
                .lease(matches!(wanted, Wanted::Firmware(_)))
                .await
                .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
            self.lease = Some(lease);
            let device = self.require_device()?;
            let mut policy = self.policy.clone();
            policy.profile = policy.profile.or(Some(ctx.default_profile.clone()));
            ctx.lab.policies().set(device, policy);
        }
        let wanted = match wanted {
            Wanted::Firmware(spec) => Some(
                FirmwareSource::parse(&spec)
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))?,
            ),
            Wanted::RunFirmware => ctx.firmware.clone(),
            Wanted::Nothing => None,
        };
        if let Some(wanted) = wanted {
            if self.log.is_none() && !ctx.log_profile_forced {
                if let Some(name) = wanted.log_profile() {
                    let profile = LogProfile::load(name, &ctx.log_profiles_dir)
                        .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
                    self.log = Some(Arc::new(profile));
                }
            }
            let installed = self
                .lease
                .as_mut()
                .and_then(|l| l.board().installed.clone());
            if installed.as_deref() != Some(&wanted.to_string()) {
                self.flash(ctx, wanted).await?;
            }
        }
        self.firmware = self
            .lease
            .as_mut()
            .and_then(|l| l.board().installed.clone())
            .or_else(|| Some("as found on the board".into()));
        self.overhead += begun.elapsed();
        Ok(())
    }

    /// Flashes the leased board.
    async fn flash(&mut self, ctx: &RunContext, firmware: FirmwareSource) -> StepResult {
        self.stop_session().await?;
        let lease = self
            .lease
            .as_mut()
            .ok_or_else(|| StepFailure::infrastructure("no board"))?;
        lease
            .board()
            .flash(&firmware, &ctx.timeline)
            .await
            .map_err(|e| StepFailure::infrastructure(&format!("flashing {firmware}: {e}")))?;
        self.firmware = Some(firmware.to_string());
        Ok(())
    }

    pub(crate) async fn stop_session(&mut self) -> StepResult {
        if let Some(session) = self.session.take() {
            let port = session
                .stop()
                .await
                .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
            if let Some(lease) = self.lease.as_mut() {
                lease.board().parked = Some(port);
            }
        }
        Ok(())
    }

    /// Resets the board, reads its console and provisions it at its prompt.
    async fn boot(&mut self, ctx: &RunContext) -> StepResult {
        let begun = Instant::now();
        if self.lease.is_none() {
            self.ensure_board(ctx, Wanted::RunFirmware).await?;
        }
        self.stop_session().await?;
        self.push_policy(ctx).await?;
        let device = self.require_device()?;
        let provisioning = if self.provision {
            let presented = match self.presented {
                Some(id) => ctx.catalogue.profile(id),
                None => ctx.catalogue.profile(ctx.default_profile.id()),
            }
            .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
            let credentials = self.credentials.clone().or_else(|| {
                self.policy
                    .mqtt
                    .credentials
                    .as_ref()
                    .map(|c| (c.username.clone(), c.expose_password().to_owned()))
            });
            let options = ProvisionOptions {
                credentials,
                client_certificate: true,
                client_id: None,
                publish_interval_ms: None,
            };
            let settings =
                provisioning::settings(&ctx.lab.addrs(), &ctx.catalogue, presented, &options)
                    .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
            Some(provisioning::line(&settings))
        } else {
            None
        };
        let log = self.log();
        let is_prompt: crate::serial::session::PromptTest = Arc::new(move |line: &str| {
            log.recognise(line)
                .is_some_and(|r| r.event == SemanticEvent::ProvReady)
                || line.starts_with("[prov] ready")
        });
        self.mark_act(ctx);
        self.reset_at = Some(ctx.timeline.cursor());
        let lease = self
            .lease
            .as_mut()
            .ok_or_else(|| StepFailure::infrastructure("no board"))?;
        let board = lease.board();
        let port = board.take_port().await.map_err(|e| {
            StepFailure::infrastructure(&format!(
                "the board at {} does not answer: {e}",
                board.spec
            ))
        })?;
        let options = SessionOptions {
            timeline: ctx.timeline.clone(),
            device: Some(device),
            provisioning,
            is_prompt,
        };
        self.session = Some(ConsoleSession::start(board.spec.clone(), port, options));
        self.overhead += begun.elapsed();
        Ok(())
    }

    async fn publish(&mut self, ctx: &RunContext, topic: &str, payload: Vec<u8>) -> StepResult {
        if self.mqtt.is_none() {
            let id = format!(
                "hil-harness-{}",
                self.device().map(|d| d.to_string()).unwrap_or_default()
            );
            let client = ctx
                .lab
                .mqtt_client(&id)
                .await
                .map_err(|e| StepFailure::infrastructure(&e.to_string()))?;
            self.mqtt = Some(client);
        }
        let client = self
            .mqtt
            .as_ref()
            .ok_or_else(|| StepFailure::infrastructure("no MQTT client"))?;
        client
            .publish(topic, payload, false)
            .await
            .map_err(|e| StepFailure::infrastructure(&e.to_string()))
    }
}
