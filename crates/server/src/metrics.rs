//! What the province's IT staff watch: requests and errors by route, their durations, the
//! size of what stations push and pull, stations by how long ago they were last seen, open
//! conflicts and the database's size, in the OpenMetrics text format Prometheus reads. It
//! is served on a listener of its own (`serve --metrics-listen`, loopback unless another
//! address is given), never on the stations' port. No label carries a station, a unit or
//! anything a request held: routes are the API's own patterns.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::api::Shared;

type Labels = Vec<(&'static str, String)>;

/// The server's instruments.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    seconds: Family<Labels, Histogram, fn() -> Histogram>,
    request_bytes: Family<Labels, Histogram, fn() -> Histogram>,
    response_bytes: Family<Labels, Histogram, fn() -> Histogram>,
    stations: Family<Labels, Gauge>,
    open_conflicts: Gauge,
    database_bytes: Gauge,
}

fn duration_buckets() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn size_buckets() -> Histogram {
    // 256 bytes to 64 MiB.
    Histogram::new(exponential_buckets(256.0, 4.0, 10))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("binhyen");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        let seconds: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route",
            seconds.clone(),
        );
        let request_bytes: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(size_buckets);
        registry.register(
            "http_request_bytes",
            "Size of what stations send (a push's body, as sent), by route",
            request_bytes.clone(),
        );
        let response_bytes: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(size_buckets);
        registry.register(
            "http_response_bytes",
            "Size of the answers (a pull's page, before compression), by route",
            response_bytes.clone(),
        );
        let stations = Family::<Labels, Gauge>::default();
        registry.register(
            "stations",
            "Stations by state and by how long ago their last sync was",
            stations.clone(),
        );
        let open_conflicts = Gauge::default();
        registry.register(
            "open_conflicts",
            "Conflicts no station has resolved yet",
            open_conflicts.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register(
            "database_bytes",
            "The database's size on disk",
            database_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            seconds,
            request_bytes,
            response_bytes,
            stations,
            open_conflicts,
            database_bytes,
        }
    }
}

/// The API's route a path belongs to, as the router names it; "other" for anything else (a
/// path never becomes a label of its own).
pub fn route_of(path: &str) -> &'static str {
    const FIXED: [&str; 12] = [
        "/healthz",
        "/api/openapi.json",
        "/api/v1/enroll",
        "/api/v1/push",
        "/api/v1/pull",
        "/api/v1/checksum",
        "/api/v1/records",
        "/api/v1/audit",
        "/api/v1/recovery",
        "/api/v1/identity-anchors",
        "/api/v1/release",
        "/metrics",
    ];
    if let Some(r) = FIXED.iter().find(|r| **r == path) {
        return r;
    }
    if path.starts_with("/api/v1/attachments/") && path.matches('/').count() == 4 {
        return "/api/v1/attachments/{sha256}";
    }
    if path.starts_with("/api/v1/release/") && path.ends_with("/piece") {
        return "/api/v1/release/{version}/piece";
    }
    "other"
}

/// Counts and times every request of the stations' router (the outermost layer: refusals
/// at the gate are counted too).
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    // A method label from a fixed set: an invented method makes no new series.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "HEAD" | "DELETE" | "OPTIONS" | "PATCH") => m,
        _ => "other",
    }
    .to_string();
    let sent = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let start = Instant::now();
    let response = next.run(req).await;
    let route_label: Labels = vec![("route", route.to_string())];
    m.seconds
        .get_or_create(&route_label)
        .observe(start.elapsed().as_secs_f64());
    if let Some(n) = sent {
        m.request_bytes
            .get_or_create(&route_label)
            .observe(n as f64);
    }
    if let Some(n) = axum::body::HttpBody::size_hint(response.body()).exact() {
        m.response_bytes
            .get_or_create(&route_label)
            .observe(n as f64);
    }
    m.requests
        .get_or_create(&vec![
            ("route", route.to_string()),
            ("method", method),
            ("status", response.status().as_u16().to_string()),
        ])
        .inc();
    response
}

/// How long ago a station was last seen, in the buckets the dashboard shows.
fn age_bucket(seen: Option<&str>, now: DateTime<Utc>) -> &'static str {
    let Some(at) = seen.and_then(|s| s.parse::<DateTime<Utc>>().ok()) else {
        return "never";
    };
    let hours = (now - at).num_hours();
    match hours {
        h if h < 1 => "under_1h",
        h if h < 24 => "under_1d",
        h if h < 24 * 7 => "under_7d",
        _ => "over_7d",
    }
}

impl Metrics {
    /// The text a scrape reads: the request instruments, and what the database says now.
    pub fn render(&self, db: &Shared, now: DateTime<Utc>) -> Result<String, String> {
        let stats = db.stats().map_err(|e| e.to_string())?;
        let stations = db.stations().map_err(|e| e.to_string())?;
        let seen = db.stations_seen().map_err(|e| e.to_string())?;
        self.open_conflicts.set(stats.open_conflicts as i64);
        self.database_bytes.set(stats.database_bytes as i64);
        // Counted first, then set: two scrapes at once give the same figures.
        let mut counts: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
        for state in ["enrolled", "waiting", "revoked"] {
            for age in ["under_1h", "under_1d", "under_7d", "over_7d", "never"] {
                counts.insert((state, age), 0);
            }
        }
        for s in &stations {
            let state = if s.revoked_at.is_some() {
                "revoked"
            } else if s.enrolled_at.is_some() {
                "enrolled"
            } else {
                "waiting"
            };
            let age = age_bucket(seen.get(&s.id).map(|(_, at)| at.as_str()), now);
            *counts.entry((state, age)).or_default() += 1;
        }
        for ((state, age), n) in counts {
            self.stations
                .get_or_create(&vec![
                    ("state", state.to_string()),
                    ("last_sync", age.to_string()),
                ])
                .set(n);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// The metrics listener's router: `/metrics` only.
pub fn router(db: Shared, metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let (db, metrics) = (db.clone(), metrics.clone());
            async move {
                let text =
                    tokio::task::spawn_blocking(move || metrics.render(&db, Utc::now())).await;
                match text {
                    Ok(Ok(t)) => (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        t,
                    )
                        .into_response(),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "metrics: the database did not answer");
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            "database unavailable\n",
                        )
                            .into_response()
                    }
                    Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_the_apis_patterns_never_a_path() {
        assert_eq!(route_of("/api/v1/push"), "/api/v1/push");
        assert_eq!(
            route_of(&format!("/api/v1/attachments/{}", "a".repeat(64))),
            "/api/v1/attachments/{sha256}"
        );
        assert_eq!(
            route_of("/api/v1/release/1.2.3/piece"),
            "/api/v1/release/{version}/piece"
        );
        assert_eq!(route_of("/api/v1/attachments/x/y"), "other");
        assert_eq!(route_of("/etc/passwd"), "other");
        let now: DateTime<Utc> = "2026-12-07T12:00:00Z".parse().unwrap();
        assert_eq!(age_bucket(Some("2026-12-07T11:30:00Z"), now), "under_1h");
        assert_eq!(age_bucket(Some("2026-12-01T11:30:00Z"), now), "under_7d");
        assert_eq!(age_bucket(None, now), "never");
    }
}
