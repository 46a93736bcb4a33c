//! `[metrics]`: the Prometheus endpoint.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The address `metrics.listen` has by default: loopback only, the port Prometheus' own
/// exporters list for DNS servers (CoreDNS).
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9153);

/// `[metrics]`: the Prometheus text exposition, on a listener of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` answers (plain HTTP); `""` turns the endpoint off.
    #[serde(serialize_with = "addr_or_empty", deserialize_with = "empty_or_addr")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: Some(DEFAULT_METRICS_LISTEN),
        }
    }
}

fn addr_or_empty<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match addr {
        Some(addr) => s.collect_str(addr),
        None => s.serialize_str(""),
    }
}

fn empty_or_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an address such as \"127.0.0.1:9153\" (\"\" turns metrics off)"
        ))
    })
}
