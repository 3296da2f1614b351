//! The gRPC client of labgrid's coordinator: one HTTP/2 connection (the
//! coordinator knows a client by its connection and the name on its stream),
//! one `ClientStream` kept open for the session, unary calls beside it.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use super::proto::{self, client_in_message, map_value, update_response};
use super::{FarmError, FarmEvent, FarmSpec, HeldPlace};
use crate::serial::PortSpec;

/// How long connecting to the coordinator may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a waiting reservation is polled (labgrid-client polls every second;
/// a reservation expires 60 s after its last poll).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often a held reservation is polled while the places are used.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);
/// How long the exporter may take to publish a place's serial port once acquired.
const SERIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// How to reach the farm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FarmOptions {
    /// The coordinator, `host:port`.
    pub coordinator: String,
    /// Wait for places held by others (otherwise refuse, naming the holder).
    pub wait: bool,
    /// The name this client gives the coordinator: what others see as a place's
    /// holder.
    pub name: String,
}

impl FarmOptions {
    /// The coordinator at `addr`, waiting for held places, named
    /// `HOST/USER/hil-PID` (labgrid's own client says `HOST/USER`).
    pub fn new(addr: impl Into<String>) -> FarmOptions {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_string());
        FarmOptions {
            coordinator: addr.into(),
            wait: true,
            name: format!("{}/{user}/hil-{}", hostname(), std::process::id()),
        }
    }

    /// Refuse places held by others instead of waiting for them.
    pub fn no_wait(mut self) -> FarmOptions {
        self.wait = false;
        self
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    #[allow(unsafe_code)]
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// What must be given back.
#[derive(Debug, Default)]
struct Claims {
    /// Reservation tokens not cancelled yet.
    tokens: Vec<String>,
    /// Places allocated to this client (acquired, or about to be).
    places: Vec<String>,
}

/// A session with labgrid's coordinator. Everything it reserved or acquired is
/// given back by [`Farm::release`], which callers must reach on every exit path.
#[derive(Debug)]
pub struct Farm {
    addr: String,
    name: String,
    wait: bool,
    grpc: tonic::client::Grpc<Channel>,
    /// Keeps the client stream open: dropping it ends the session.
    _stream: mpsc::Sender<proto::ClientInMessage>,
    /// Resources as the stream reports them, by `exporter/group/cls/name`.
    resources: watch::Receiver<HashMap<String, proto::Resource>>,
    claims: Arc<Mutex<Claims>>,
    keepalive: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn status_error(addr: &str, request: &'static str, status: tonic::Status) -> FarmError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
            if status.message().contains("transport") || status.message().contains("connect") =>
        {
            FarmError::CoordinatorDown {
                addr: addr.to_string(),
                reason: status.message().to_string(),
            }
        }
        _ => FarmError::Refused {
            addr: addr.to_string(),
            request,
            message: status.message().to_string(),
        },
    }
}

fn resource_key(resource: &proto::Resource) -> Option<String> {
    let path = resource.path.as_ref()?;
    Some(format!(
        "{}/{}/{}/{}",
        path.exporter_name.as_deref().unwrap_or_default(),
        path.group_name,
        resource.cls,
        path.resource_name
    ))
}

fn int_param(resource: &proto::Resource, key: &str) -> Option<i64> {
    match resource.params.get(key)?.kind.as_ref()? {
        map_value::Kind::IntValue(v) => Some(*v),
        map_value::Kind::UintValue(v) => i64::try_from(*v).ok(),
        map_value::Kind::FloatValue(v) => Some(*v as i64),
        map_value::Kind::StringValue(v) => v.parse().ok(),
        map_value::Kind::BoolValue(_) => None,
    }
}

fn string_param(resource: &proto::Resource, key: &str) -> Option<String> {
    match resource.params.get(key)?.kind.as_ref()? {
        map_value::Kind::StringValue(v) if !v.is_empty() => Some(v.clone()),
        _ => None,
    }
}

impl Farm {
    /// Connects to the coordinator and opens the session's stream (startup,
    /// subscription to resources, a sync barrier so the coordinator knows this
    /// client before any request).
    pub async fn connect(options: &FarmOptions) -> Result<Farm, FarmError> {
        let addr = options.coordinator.clone();
        let down = |reason: String| FarmError::CoordinatorDown {
            addr: addr.clone(),
            reason,
        };
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| down(format!("not a host:port ({e})")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(Duration::from_secs(30));
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| down(transport_reason(&e)))?;
        let mut grpc = tonic::client::Grpc::new(channel);
        let (tx, rx) = mpsc::channel::<proto::ClientInMessage>(16);
        let send = |kind| proto::ClientInMessage { kind: Some(kind) };
        let hello = [
            send(client_in_message::Kind::Startup(proto::StartupDone {
                version: format!("hil {}", env!("CARGO_PKG_VERSION")),
                name: options.name.clone(),
            })),
            send(client_in_message::Kind::Subscribe(proto::Subscribe {
                is_unsubscribe: None,
                kind: Some(proto::subscribe::Kind::AllResources(true)),
            })),
            send(client_in_message::Kind::Sync(proto::Sync { id: 1 })),
        ];
        for message in hello {
            // The receiver is alive: it is handed to the stream below.
            let _ = tx.send(message).await;
        }
        let outgoing = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|message| (message, rx))
        });
        grpc.ready()
            .await
            .map_err(|e| down(format!("not ready: {e}")))?;
        let path = PathAndQuery::from_static("/labgrid.Coordinator/ClientStream");
        let codec =
            tonic::codec::ProstCodec::<proto::ClientInMessage, proto::ClientOutMessage>::default();
        let mut incoming = grpc
            .streaming(tonic::Request::new(outgoing), path, codec)
            .await
            .map_err(|status| down(status.message().to_string()))?
            .into_inner();
        let (resources_tx, resources) = watch::channel(HashMap::new());
        // Everything up to the sync answer is the state at startup.
        let mut synced = false;
        while !synced {
            let message = tokio::time::timeout(CONNECT_TIMEOUT, incoming.message())
                .await
                .map_err(|_| down("no answer on the client stream within 3 s".into()))?
                .map_err(|status| down(status.message().to_string()))?
                .ok_or_else(|| down("the coordinator closed the client stream".into()))?;
            synced = message.sync.as_ref().is_some_and(|s| s.id == 1);
            apply(&resources_tx, message);
        }
        tokio::spawn(async move {
            while let Ok(Some(message)) = incoming.message().await {
                apply(&resources_tx, message);
            }
        });
        Ok(Farm {
            addr,
            name: options.name.clone(),
            wait: options.wait,
            grpc,
            _stream: tx,
            resources,
            claims: Arc::new(Mutex::new(Claims::default())),
            keepalive: Mutex::new(None),
        })
    }

    /// The coordinator's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The name this client gave the coordinator.
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn call<Req, Resp>(&self, method: &'static str, request: Req) -> Result<Resp, FarmError>
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
    {
        let mut grpc = self.grpc.clone();
        grpc.ready().await.map_err(|e| FarmError::CoordinatorDown {
            addr: self.addr.clone(),
            reason: e.to_string(),
        })?;
        let path = PathAndQuery::from_str(&format!("{}{method}", proto::SERVICE)).map_err(|e| {
            FarmError::Refused {
                addr: self.addr.clone(),
                request: method,
                message: e.to_string(),
            }
        })?;
        let codec = tonic::codec::ProstCodec::<Req, Resp>::default();
        grpc.unary(tonic::Request::new(request), path, codec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status_error(&self.addr, method, status))
    }

    /// Every place the coordinator knows.
    pub async fn places(&self) -> Result<Vec<proto::Place>, FarmError> {
        let response: proto::GetPlacesResponse =
            self.call("GetPlaces", proto::GetPlacesRequest {}).await?;
        Ok(response.places)
    }

    /// Reserves and acquires `spec.count` places matching `spec`, waiting for
    /// held ones (or refusing them, naming the holder, without waiting), and
    /// reads each one's serial port. Whatever was reserved or acquired, also
    /// when this fails or is cancelled, is given back by [`Farm::release`].
    pub async fn acquire(
        &self,
        spec: &FarmSpec,
        on_event: &mut (dyn FnMut(FarmEvent) + Send),
    ) -> Result<Vec<HeldPlace>, FarmError> {
        on_event(FarmEvent::Connected {
            addr: self.addr.clone(),
        });
        let places = self.places().await?;
        let matching: Vec<&proto::Place> = places
            .iter()
            .filter(|p| spec.matches(&p.name, &p.tags))
            .collect();
        if matching.is_empty() {
            return Err(FarmError::NoPlace {
                addr: self.addr.clone(),
                spec: spec.to_string(),
            });
        }
        if matching.len() < spec.count {
            return Err(FarmError::TooFew {
                addr: self.addr.clone(),
                spec: spec.to_string(),
                wanted: spec.count,
                found: matching.len(),
            });
        }
        if !self.wait {
            let free = matching
                .iter()
                .filter(|p| p.acquired.is_none() && p.reservation.is_none())
                .count();
            if free < spec.count {
                let busy = matching
                    .iter()
                    .find(|p| p.acquired.is_some() || p.reservation.is_some())
                    .map(|p| (p.name.clone(), holder(p)));
                if let Some((place, holder)) = busy {
                    return Err(FarmError::Held { place, holder });
                }
            }
        }
        let filter = proto::reservation::Filter {
            filter: spec.filter().into_iter().collect(),
        };
        let mut tokens = Vec::new();
        for _ in 0..spec.count {
            let response: proto::CreateReservationResponse = self
                .call(
                    "CreateReservation",
                    proto::CreateReservationRequest {
                        filters: HashMap::from([("main".to_string(), filter.clone())]),
                        prio: 0.0,
                    },
                )
                .await?;
            let token = response
                .reservation
                .map(|r| r.token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| FarmError::Refused {
                    addr: self.addr.clone(),
                    request: "CreateReservation",
                    message: "no reservation token in the answer".into(),
                })?;
            self.lock().tokens.push(token.clone());
            tokens.push(token);
        }
        self.start_keepalive();
        let mut held = Vec::new();
        let mut told: BTreeSet<(String, String)> = BTreeSet::new();
        let mut pending: Vec<String> = tokens;
        while !pending.is_empty() {
            let mut still = Vec::new();
            for token in pending {
                let response: proto::PollReservationResponse = self
                    .call(
                        "PollReservation",
                        proto::PollReservationRequest {
                            token: token.clone(),
                        },
                    )
                    .await?;
                let reservation = response.reservation.unwrap_or_default();
                match reservation.state {
                    proto::state::ALLOCATED | proto::state::ACQUIRED => {
                        let Some(place) = reservation.allocations.get("main").cloned() else {
                            still.push(token);
                            continue;
                        };
                        self.lock().places.push(place.clone());
                        let _: proto::AcquirePlaceResponse = self
                            .call(
                                "AcquirePlace",
                                proto::AcquirePlaceRequest {
                                    placename: place.clone(),
                                },
                            )
                            .await?;
                        let place = self.serial_of(&place).await?;
                        on_event(FarmEvent::Acquired(place.clone()));
                        held.push(place);
                    }
                    proto::state::EXPIRED => {
                        return Err(FarmError::Reservation {
                            spec: spec.to_string(),
                            state: "expired",
                        })
                    }
                    proto::state::INVALID => {
                        return Err(FarmError::Reservation {
                            spec: spec.to_string(),
                            state: "invalid",
                        })
                    }
                    _ => still.push(token),
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            // Say who holds the places waited for, once per holder.
            let places = self.places().await?;
            let mine = self.lock().places.clone();
            for place in places
                .iter()
                .filter(|p| spec.matches(&p.name, &p.tags) && !mine.contains(&p.name))
                .filter(|p| p.acquired.is_some() || p.reservation.is_some())
            {
                let key = (place.name.clone(), holder(place));
                if told.insert(key.clone()) {
                    on_event(FarmEvent::Waiting {
                        place: key.0,
                        holder: key.1,
                    });
                }
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        Ok(held)
    }

    /// The acquired `place`'s serial port, once its exporter published it.
    async fn serial_of(&self, place: &str) -> Result<HeldPlace, FarmError> {
        let deadline = tokio::time::Instant::now() + SERIAL_TIMEOUT;
        let no_serial = || FarmError::NoSerial {
            place: place.to_string(),
        };
        let info = self
            .places()
            .await?
            .into_iter()
            .find(|p| p.name == place)
            .ok_or_else(no_serial)?;
        let device_ip = match info.tags.get("ip") {
            Some(value) => Some(IpAddr::from_str(value).map_err(|_| FarmError::BadIp {
                place: place.to_string(),
                value: value.clone(),
            })?),
            None => None,
        };
        let wanted: Vec<String> = info
            .acquired_resources
            .iter()
            .filter(|path| path.split('/').nth(2) == Some("NetworkSerialPort"))
            .cloned()
            .collect();
        let mut resources = self.resources.clone();
        loop {
            let found = {
                let known = resources.borrow_and_update();
                wanted.iter().find_map(|key| {
                    let resource = known.get(key)?;
                    let port = int_param(resource, "port").filter(|p| (1..=65535).contains(p))?;
                    let host = string_param(resource, "host")?;
                    let speed = int_param(resource, "speed").and_then(|s| u32::try_from(s).ok());
                    Some((host, port, speed))
                })
            };
            if let Some((host, port, speed)) = found {
                return Ok(HeldPlace {
                    name: place.to_string(),
                    port: PortSpec::Rfc2217(format!("{host}:{port}")),
                    speed,
                    device_ip,
                });
            }
            if wanted.is_empty() {
                return Err(no_serial());
            }
            match tokio::time::timeout_at(deadline, resources.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(no_serial()),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Claims> {
        match self.claims.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Polls the reservations now and then while the places are used, so none
    /// expires even if the coordinator stopped counting them as acquired.
    fn start_keepalive(&self) {
        let mut slot = match self.keepalive.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.is_some() {
            return;
        }
        let grpc = self.grpc.clone();
        let claims = self.claims.clone();
        *slot = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEEPALIVE_EVERY).await;
                let tokens = claims.lock().map(|c| c.tokens.clone()).unwrap_or_default();
                for token in tokens {
                    let mut grpc = grpc.clone();
                    if grpc.ready().await.is_err() {
                        continue;
                    }
                    let path = PathAndQuery::from_static("/labgrid.Coordinator/PollReservation");
                    let codec = tonic::codec::ProstCodec::<
                        proto::PollReservationRequest,
                        proto::PollReservationResponse,
                    >::default();
                    let _ = grpc
                        .unary(
                            tonic::Request::new(proto::PollReservationRequest { token }),
                            path,
                            codec,
                        )
                        .await;
                }
            }
        }));
    }

    /// Releases every place this session acquired (only if this client still
    /// holds it) and cancels its reservations. Tries everything; the first
    /// failure is returned. Calling it again does nothing.
    pub async fn release(&self) -> Result<Vec<String>, FarmError> {
        if let Ok(mut slot) = self.keepalive.lock() {
            if let Some(task) = slot.take() {
                task.abort();
            }
        }
        let (places, tokens) = {
            let mut claims = self.lock();
            (
                std::mem::take(&mut claims.places),
                std::mem::take(&mut claims.tokens),
            )
        };
        let mut first_error = None;
        let mut released = Vec::new();
        for place in places {
            let result: Result<proto::ReleasePlaceResponse, _> = self
                .call(
                    "ReleasePlace",
                    proto::ReleasePlaceRequest {
                        placename: place.clone(),
                        // Never someone else's: a place taken over meanwhile stays theirs.
                        fromuser: Some(self.name.clone()),
                    },
                )
                .await;
            match result {
                Ok(_) => released.push(place),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        for token in tokens {
            let result: Result<proto::CancelReservationResponse, _> = self
                .call(
                    "CancelReservation",
                    proto::CancelReservationRequest { token },
                )
                .await;
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(released),
        }
    }
}

/// Who holds `place`, as labgrid names them.
fn holder(place: &proto::Place) -> String {
    match (&place.acquired, &place.reservation) {
        (Some(who), _) => who.clone(),
        (None, Some(token)) => format!("reservation {token}"),
        (None, None) => "nobody".to_string(),
    }
}

fn transport_reason(error: &tonic::transport::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}

fn apply(
    resources: &watch::Sender<HashMap<String, proto::Resource>>,
    message: proto::ClientOutMessage,
) {
    if message.updates.is_empty() {
        return;
    }
    resources.send_modify(|known| {
        for update in message.updates {
            match update.kind {
                Some(update_response::Kind::Resource(resource)) => {
                    if let Some(key) = resource_key(&resource) {
                        known.insert(key, resource);
                    }
                }
                Some(update_response::Kind::DelResource(path)) => {
                    let prefix = format!(
                        "{}/{}/",
                        path.exporter_name.as_deref().unwrap_or_default(),
                        path.group_name
                    );
                    let suffix = format!("/{}", path.resource_name);
                    known.retain(|key, _| !(key.starts_with(&prefix) && key.ends_with(&suffix)));
                }
                _ => {}
            }
        }
    });
}
