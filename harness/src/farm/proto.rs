//! The messages of labgrid's coordinator API that `hil` sends and reads, written
//! out with prost's derive from `labgrid/labgrid-coordinator.proto` (vendored
//! beside this file, LGPL-2.1-or-later, see its README). Field numbers are the
//! proto's; a test below checks each against the vendored file. Messages and
//! fields `hil` never uses are left out: protobuf skips unknown fields.

#![allow(missing_docs)] // the proto's names; their meaning is in the proto

use std::collections::HashMap;

/// The gRPC service path.
pub(crate) const SERVICE: &str = "/labgrid.Coordinator/";

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClientInMessage {
    #[prost(oneof = "client_in_message::Kind", tags = "1, 2, 3")]
    pub kind: Option<client_in_message::Kind>,
}

pub mod client_in_message {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Sync(super::Sync),
        #[prost(message, tag = "2")]
        Startup(super::StartupDone),
        #[prost(message, tag = "3")]
        Subscribe(super::Subscribe),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sync {
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StartupDone {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Subscribe {
    #[prost(bool, optional, tag = "1")]
    pub is_unsubscribe: Option<bool>,
    #[prost(oneof = "subscribe::Kind", tags = "2, 3")]
    pub kind: Option<subscribe::Kind>,
}

pub mod subscribe {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(bool, tag = "2")]
        AllPlaces(bool),
        #[prost(bool, tag = "3")]
        AllResources(bool),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClientOutMessage {
    #[prost(message, optional, tag = "1")]
    pub sync: Option<Sync>,
    #[prost(message, repeated, tag = "2")]
    pub updates: Vec<UpdateResponse>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateResponse {
    #[prost(oneof = "update_response::Kind", tags = "1, 2, 3, 4")]
    pub kind: Option<update_response::Kind>,
}

pub mod update_response {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Resource(super::Resource),
        #[prost(message, tag = "2")]
        DelResource(super::resource::Path),
        #[prost(message, tag = "3")]
        Place(super::Place),
        #[prost(string, tag = "4")]
        DelPlace(String),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    #[prost(message, optional, tag = "1")]
    pub path: Option<resource::Path>,
    #[prost(string, tag = "2")]
    pub cls: String,
    #[prost(map = "string, message", tag = "3")]
    pub params: HashMap<String, MapValue>,
    #[prost(map = "string, message", tag = "4")]
    pub extra: HashMap<String, MapValue>,
    #[prost(string, tag = "5")]
    pub acquired: String,
    #[prost(bool, tag = "6")]
    pub avail: bool,
}

pub mod resource {
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Path {
        #[prost(string, optional, tag = "1")]
        pub exporter_name: Option<String>,
        #[prost(string, tag = "2")]
        pub group_name: String,
        #[prost(string, tag = "3")]
        pub resource_name: String,
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MapValue {
    #[prost(oneof = "map_value::Kind", tags = "1, 2, 3, 4, 5")]
    pub kind: Option<map_value::Kind>,
}

pub mod map_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(bool, tag = "1")]
        BoolValue(bool),
        #[prost(int64, tag = "2")]
        IntValue(i64),
        #[prost(uint64, tag = "3")]
        UintValue(u64),
        #[prost(double, tag = "4")]
        FloatValue(f64),
        #[prost(string, tag = "5")]
        StringValue(String),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetPlacesRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetPlacesResponse {
    #[prost(message, repeated, tag = "1")]
    pub places: Vec<Place>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Place {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, repeated, tag = "2")]
    pub aliases: Vec<String>,
    #[prost(string, tag = "3")]
    pub comment: String,
    #[prost(map = "string, string", tag = "4")]
    pub tags: HashMap<String, String>,
    #[prost(message, repeated, tag = "5")]
    pub matches: Vec<ResourceMatch>,
    #[prost(string, optional, tag = "6")]
    pub acquired: Option<String>,
    #[prost(string, repeated, tag = "7")]
    pub acquired_resources: Vec<String>,
    #[prost(string, repeated, tag = "8")]
    pub allowed: Vec<String>,
    #[prost(double, tag = "9")]
    pub created: f64,
    #[prost(double, tag = "10")]
    pub changed: f64,
    #[prost(string, optional, tag = "11")]
    pub reservation: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceMatch {
    #[prost(string, tag = "1")]
    pub exporter: String,
    #[prost(string, tag = "2")]
    pub group: String,
    #[prost(string, tag = "3")]
    pub cls: String,
    #[prost(string, optional, tag = "4")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub rename: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AcquirePlaceRequest {
    #[prost(string, tag = "1")]
    pub placename: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AcquirePlaceResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReleasePlaceRequest {
    #[prost(string, tag = "1")]
    pub placename: String,
    #[prost(string, optional, tag = "2")]
    pub fromuser: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReleasePlaceResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateReservationRequest {
    #[prost(map = "string, message", tag = "1")]
    pub filters: HashMap<String, reservation::Filter>,
    #[prost(double, tag = "2")]
    pub prio: f64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateReservationResponse {
    #[prost(message, optional, tag = "1")]
    pub reservation: Option<Reservation>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Reservation {
    #[prost(string, tag = "1")]
    pub owner: String,
    #[prost(string, tag = "2")]
    pub token: String,
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(double, tag = "4")]
    pub prio: f64,
    #[prost(map = "string, message", tag = "5")]
    pub filters: HashMap<String, reservation::Filter>,
    #[prost(map = "string, string", tag = "6")]
    pub allocations: HashMap<String, String>,
    #[prost(double, tag = "7")]
    pub created: f64,
    #[prost(double, tag = "8")]
    pub timeout: f64,
}

pub mod reservation {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Filter {
        #[prost(map = "string, string", tag = "1")]
        pub filter: std::collections::HashMap<String, String>,
    }
}

/// `Reservation.state` (labgrid's `ReservationState`); waiting is 0.
pub(crate) mod state {
    pub const ALLOCATED: i32 = 1;
    pub const ACQUIRED: i32 = 2;
    pub const EXPIRED: i32 = 3;
    pub const INVALID: i32 = 4;
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CancelReservationRequest {
    #[prost(string, tag = "1")]
    pub token: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CancelReservationResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PollReservationRequest {
    #[prost(string, tag = "1")]
    pub token: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PollReservationResponse {
    #[prost(message, optional, tag = "1")]
    pub reservation: Option<Reservation>,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    const PROTO: &str = include_str!("labgrid/labgrid-coordinator.proto");
    /// This file's own text: the field declarations are read from it.
    const HERE: &str = include_str!("proto.rs");

    /// `message NAME { ... }` bodies of the vendored proto (nested messages are
    /// named `Outer.Inner`), each field's name with its number.
    fn proto_fields() -> HashMap<String, HashMap<String, u32>> {
        let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
        let mut stack: Vec<String> = Vec::new();
        for line in PROTO.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("message ") {
                let name = rest.trim_end_matches('{').trim().to_string();
                let full = match stack.last() {
                    Some(outer) if !outer.is_empty() => format!("{outer}.{name}"),
                    _ => name,
                };
                stack.push(full);
                continue;
            }
            if line.starts_with("oneof ") || line.starts_with("service ") {
                let keep = stack.last().cloned().unwrap_or_default();
                stack.push(keep);
                continue;
            }
            if line.starts_with('}') {
                stack.pop();
                continue;
            }
            if let (Some(message), Some((decl, number))) = (stack.last(), line.split_once('=')) {
                let field = decl.split_whitespace().last().unwrap_or_default();
                let number = number.trim().trim_end_matches(';').trim();
                if let Ok(number) = number.parse() {
                    out.entry(message.clone())
                        .or_default()
                        .insert(field.to_string(), number);
                }
            }
        }
        out
    }

    fn camel(snake: &str) -> String {
        snake
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn every_field_number_is_the_protos() {
        let proto = proto_fields();
        let mut checked = 0;
        let (mut module, mut message) = (String::new(), String::new());
        let mut tag: Option<u32> = None;
        for raw in HERE.lines().take_while(|l| !l.contains("mod tests")) {
            let line = raw.trim();
            if let Some(rest) = raw.strip_prefix("pub mod ") {
                module = camel(rest.trim_end_matches(" {"));
                continue;
            }
            if raw.starts_with('}') && !module.is_empty() && message.is_empty() {
                module.clear();
                continue;
            }
            let declared = line
                .strip_prefix("pub struct ")
                .or_else(|| line.strip_prefix("pub enum "));
            if let Some(rest) = declared {
                let name = rest.split([' ', '{']).next().unwrap_or_default();
                message = match (name, raw.starts_with(' ')) {
                    ("Kind", _) => module.clone(),
                    (name, true) => format!("{module}.{name}"),
                    (name, false) => name.to_string(),
                };
                continue;
            }
            if raw.starts_with('}') || raw.starts_with("    }") {
                message.clear();
                continue;
            }
            if let Some(at) = line.find("tag = \"") {
                let number = &line[at + 7..];
                tag = number[..number.find('"').unwrap_or(0)].parse().ok();
                continue;
            }
            let Some(number) = tag else { continue };
            let field = match line.strip_prefix("pub ") {
                Some(declaration) => declaration
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                None => snake(line.split('(').next().unwrap_or_default()),
            };
            let expected = proto
                .get(&message)
                .and_then(|fields| fields.get(&field))
                .unwrap_or_else(|| panic!("{message}.{field} is not in the proto"));
            assert_eq!(*expected, number, "{message}.{field}");
            checked += 1;
            tag = None;
        }
        assert!(checked >= 60, "only {checked} fields checked");
    }

    fn snake(camel: &str) -> String {
        let mut out = String::new();
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
}
