//! Given and When steps: the board and its firmware, the lab's policy for this
//! scenario's device, and the actions (boot, publish, drop, restart, wait).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Problem, ScenarioWorld, StepResult};
use crate::lab::{BrokerPolicy, Credentials, NtpPolicy, TlsVersion, TlsVersions};
use crate::logprofile::{LogProfile, SemanticEvent};
use crate::provisioning::{self, ProvisionOptions};
use crate::runner::context::RunContext;
use crate::runner::expect::Finding;
use crate::runner::firmware::FirmwareSource;
use crate::runner::steps::{Delivery, OnlyTls, Step};
use crate::serial::session::{ConsoleSession, SessionOptions};
use crate::timeline::EventKind;

/// What firmware a scenario wants on its board.
enum Wanted {
    /// The run's (`--firmware`), if any.
    RunFirmware,
    /// This one (a variant or an image path).
    Firmware(String),
    /// Whatever it holds: a flash step follows.
    Nothing,
}

/// Whether an MQTT topic filter (with `+` and `#`) covers a topic.
pub(crate) fn filter_covers(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match (part, levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (p, Some(l)) if p == l => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

impl ScenarioWorld {
    pub(super) async fn arrange(&mut self, ctx: &RunContext, step: Step) -> StepResult {
        match step {
            Step::BoardUnderTest => self.ensure_board(ctx, Wanted::RunFirmware).await,
            Step::VirtualBoardRunning(fw) => self.ensure_board(ctx, Wanted::Firmware(fw)).await,
            Step::FlashedWith(image) => {
                self.ensure_board(ctx, Wanted::Nothing).await?;
                self.flash(ctx, FirmwareSource::Image(image.into())).await?;
                self.mark_act(ctx);
                Ok(())
            }
            Step::NotProvisioned => {
                self.provision = false;
                Ok(())
            }
            Step::UsesLogProfile(name) => {
                let profile =
                    LogProfile::load(&name, &ctx.log_profiles_dir).map_err(Problem::harness)?;
                self.use_log(Arc::new(profile));
                Ok(())
            }
            Step::ProvisionedCredentials { username, password } => {
                self.credentials = Some((username, password));
                Ok(())
            }
            Step::BrokerPresents(id) => {
                let profile = ctx.catalogue.profile(id).map_err(Problem::harness)?;
                self.policy.profile = Some(Arc::new(profile.clone()));
                self.presented = Some(id);
                self.push_policy(ctx).await
            }
            Step::BrokerRequiresSni => self.broker(ctx, BrokerPolicy::SniRequired).await,
            Step::BrokerRequiresClientCert => {
                self.broker(ctx, BrokerPolicy::ClientCertRequired).await
            }
            Step::BrokerTrustsOtherClientCa => {
                self.broker(ctx, BrokerPolicy::ClientCertWrongCa).await
            }
            Step::BrokerOnlyTls(version) => {
                self.policy.tls.versions = TlsVersions::only(match version {
                    OnlyTls::V10 => TlsVersion::Tls10,
                    OnlyTls::V11 => TlsVersion::Tls11,
                    OnlyTls::V12 => TlsVersion::Tls12,
                    OnlyTls::V13 => TlsVersion::Tls13,
                });
                self.push_policy(ctx).await
            }
            Step::BrokerIgnoresMfln => self.broker(ctx, BrokerPolicy::MflnIgnored).await,
            Step::BrokerRequiresCredentials { username, password } => {
                self.policy.mqtt.credentials = Some(Credentials::new(username, password));
                self.push_policy(ctx).await
            }
            Step::BrokerNotAuthorized => self.broker(ctx, BrokerPolicy::MqttNotAuthorized).await,
            Step::BrokerStallsAfterHello => self.broker(ctx, BrokerPolicy::StallAfterHello).await,
            Step::BrokerClosesMidHandshake => {
                self.broker(ctx, BrokerPolicy::CloseMidHandshake).await
            }
            Step::BrokerNoConnack => self.broker(ctx, BrokerPolicy::NoConnack).await,
            Step::NtpSkew(skew) => {
                self.policy.ntp = NtpPolicy::Skewed(skew);
                self.push_policy(ctx).await
            }
            Step::NtpFixed(at) => {
                self.policy.ntp = NtpPolicy::Fixed(at);
                self.push_policy(ctx).await
            }
            Step::NtpSilent => {
                self.policy.ntp = NtpPolicy::Silent;
                self.push_policy(ctx).await
            }
            Step::DnsDoesNotResolve(host) => {
                self.policy
                    .dns
                    .unresolved
                    .insert(host.trim_end_matches('.').to_ascii_lowercase());
                self.push_policy(ctx).await
            }
            Step::DnsResolvesToLab(host) => {
                ctx.lab.map_name(&host);
                Ok(())
            }
            Step::Boots => self.boot(ctx).await,
            Step::BrokerPublishes {
                payload,
                topic,
                delivery,
            } => {
                self.publish(ctx, &topic, payload.into_bytes(), delivery)
                    .await
            }
            Step::BrokerPublishesSized {
                bytes,
                topic,
                delivery,
            } => {
                let payload: Vec<u8> = (0..bytes).map(|i| b'a' + (i % 26) as u8).collect();
                self.publish(ctx, &topic, payload, delivery).await
            }
            Step::BrokerDrops => {
                let device = self.require_device()?;
                self.mark_act(ctx);
                ctx.lab
                    .drop_connections(device)
                    .await
                    .map(|_| ())
                    .map_err(Problem::harness)
            }
            Step::BrokerRestarts => {
                let device = self.require_device()?;
                self.mark_act(ctx);
                ctx.lab
                    .restart_broker(device, ctx.restart_downtime)
                    .await
                    .map_err(Problem::harness)
            }
            Step::Pass(duration) => {
                self.mark_act(ctx);
                self.pass_time(ctx, duration).await
            }
            other => Err(Problem::harness(format!("`{other:?}` is not an action"))),
        }
    }

    fn mark_act(&mut self, ctx: &RunContext) {
        self.act = Some(Self::mark(ctx));
    }

    fn use_log(&mut self, log: Arc<LogProfile>) {
        self.view.reread(&log);
        self.log = Some(log);
    }

    pub(crate) fn require_device(&self) -> Result<std::net::IpAddr, Problem> {
        self.device().ok_or_else(|| {
            Problem::harness("no board yet: start the scenario with `Given the board under test`")
        })
    }

    /// `When <duration> pass`: the device keeps running; anything that breaks a
    /// holding expectation meanwhile ends the wait.
    async fn pass_time(&mut self, ctx: &RunContext, duration: Duration) -> StepResult {
        let until = ctx.timeline.now_us() + duration.as_micros() as u64;
        self.hold_until(ctx, until).await
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
                .map_err(Problem::harness)?;
            self.lease = Some(lease);
            let device = self.require_device()?;
            self.follow(ctx, device);
            let mut policy = self.policy.clone();
            policy.profile = policy.profile.or(Some(ctx.default_profile.clone()));
            ctx.lab.policies().set(device, policy);
        }
        let wanted = match wanted {
            Wanted::Firmware(spec) => Some(FirmwareSource::parse(&spec).map_err(Problem::harness)?),
            Wanted::RunFirmware => ctx.firmware.clone(),
            Wanted::Nothing => None,
        };
        if let Some(wanted) = wanted {
            if self.log.is_none() && !ctx.log_profile_forced {
                if let Some(name) = wanted.log_profile() {
                    let profile =
                        LogProfile::load(name, &ctx.log_profiles_dir).map_err(Problem::harness)?;
                    self.use_log(Arc::new(profile));
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
            .or_else(|| Some(crate::runner::FIRMWARE_AS_FOUND.into()));
        self.overhead += begun.elapsed();
        Ok(())
    }

    /// Flashes the leased board.
    async fn flash(&mut self, ctx: &RunContext, firmware: FirmwareSource) -> StepResult {
        self.stop_session().await?;
        let lease = self
            .lease
            .as_mut()
            .ok_or_else(|| Problem::harness("no board"))?;
        lease
            .board()
            .flash(&firmware, &ctx.timeline)
            .await
            .map_err(|e| Problem::harness(format!("flashing {firmware}: {e}")))?;
        self.firmware = Some(firmware.to_string());
        Ok(())
    }

    pub(crate) async fn stop_session(&mut self) -> StepResult {
        if let Some(session) = self.session.take() {
            let port = session.stop().await.map_err(Problem::harness)?;
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
            .map_err(Problem::harness)?;
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
                // A real board joins the access point the lab runs for it.
                wifi: ctx
                    .lab
                    .network()
                    .and_then(|n| n.access_point())
                    .map(|ap| (ap.ssid.clone(), ap.psk.clone())),
            };
            let settings =
                provisioning::settings(&ctx.lab.addrs(), &ctx.catalogue, presented, &options)
                    .map_err(Problem::harness)?;
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
        let lease = self
            .lease
            .as_mut()
            .ok_or_else(|| Problem::harness("no board"))?;
        let board = lease.board();
        let port = board.take_port().await.map_err(|e| {
            Problem::harness(format!("the board at {} does not answer: {e}", board.spec))
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

    /// `When the broker publishes ...`: once the broker has acknowledged the
    /// device's subscription to the topic (its SUBACK, not the SUBSCRIBE: until
    /// the broker registers it, a message would not be routed to the device),
    /// to this scenario's device alone.
    async fn publish(
        &mut self,
        ctx: &RunContext,
        topic: &str,
        payload: Vec<u8>,
        delivery: Delivery,
    ) -> StepResult {
        let device = self.require_device()?;
        self.wait_for_subscription(ctx, topic).await?;
        ctx.lab.address_publish(device, topic, &payload);
        self.mark_act(ctx);
        if self.mqtt.is_none() {
            let id = format!(
                "hil-harness-{}",
                self.device().map(|d| d.to_string()).unwrap_or_default()
            );
            let client = ctx.lab.mqtt_client(&id).await.map_err(Problem::harness)?;
            self.mqtt = Some(client);
        }
        let client = self
            .mqtt
            .as_ref()
            .ok_or_else(|| Problem::harness("no MQTT client"))?;
        client
            .publish_with(topic, payload, delivery.qos.level(), delivery.retain)
            .await
            .map_err(Problem::harness)?;
        if delivery.retain {
            self.retained.push(topic.to_owned());
        }
        Ok(())
    }

    /// Waits (at most the settle window) for this device's SUBSCRIBE covering
    /// `topic` and the broker's SUBACK granting it. A message published before
    /// that reaches nobody, and a step that published into the void would let
    /// a firmware pass checks about a message it never received: when no
    /// subscription comes, the step fails and says so.
    async fn wait_for_subscription(&mut self, ctx: &RunContext, topic: &str) -> StepResult {
        let since = self.act_point(ctx);
        let until = ctx.timeline.now_us() + ctx.settle.as_micros() as u64;
        loop {
            if ctx.interrupt.is_triggered() {
                return Err(Problem::Interrupted);
            }
            if let Some(broken) = self.broken(ctx) {
                return Err(Problem::Verdict(Box::new(broken)));
            }
            let events = self.view.events();
            let asked = events.iter().rposition(|o| {
                matches!(&o.event.kind, EventKind::MqttSubscribe { topics }
                    if topics.iter().any(|f| filter_covers(f, topic)))
            });
            let granted = asked.is_some_and(|asked| {
                events[asked..].iter().any(|o| {
                    matches!(&o.event.kind, EventKind::MqttSuback { codes } if codes.iter().any(|c| *c < 0x80))
                })
            });
            if granted {
                return Ok(());
            }
            if ctx.timeline.now_us() >= until {
                let found = match asked {
                    Some(_) => format!(
                        "it asked for \"{topic}\" but the broker granted no subscription within the settle window ({} s): the message would reach nobody",
                        ctx.settle.as_secs_f64()
                    ),
                    None => format!(
                        "it never subscribed to a topic covering \"{topic}\" within the settle window ({} s): the message would reach nobody",
                        ctx.settle.as_secs_f64()
                    ),
                };
                let finding = Finding {
                    found,
                    from: since.seq,
                    to: self.view.events().last().map_or(since.seq, |o| o.event.seq),
                    crash: None,
                };
                let failure = self.failure_of(
                    ctx,
                    &format!(
                        "the device to subscribe to \"{topic}\" before the broker publishes to it"
                    ),
                    finding,
                    false,
                );
                return Err(Problem::Verdict(Box::new(failure)));
            }
            self.view.wait(&ctx.timeline, until, &ctx.interrupt).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::filter_covers;

    #[test]
    fn topic_filters_cover_as_mqtt_says() {
        assert!(filter_covers("hil/commands", "hil/commands"));
        assert!(filter_covers("hil/+", "hil/commands"));
        assert!(filter_covers("hil/#", "hil/commands/led"));
        assert!(filter_covers("#", "anything"));
        assert!(!filter_covers("hil/commands", "hil/command"));
        assert!(!filter_covers("hil/+", "hil/commands/led"));
        assert!(!filter_covers("hil/commands/led", "hil/commands"));
    }
}
