//! Prometheus metrics in the text exposition format: request counts and latencies, what was
//! ingested through the server, and the store's totals.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::App;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by status class: 1xx..5xx.
    by_class: [AtomicU64; 5],
    /// Cumulative counts per bucket, then the total.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_micros: AtomicU64,
    pub(crate) uploaded_reports: AtomicU64,
    pub(crate) uploaded_events: AtomicU64,
}

impl Metrics {
    pub(crate) fn request(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

pub(crate) async fn render(State(app): State<Arc<App>>) -> impl IntoResponse {
    let m = &app.metrics;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    out.push_str("# HELP farol_http_responses_total HTTP responses by status class.\n");
    out.push_str("# TYPE farol_http_responses_total counter\n");
    for (i, c) in m.by_class.iter().enumerate() {
        let _ = writeln!(out, "farol_http_responses_total{{class=\"{}xx\"}} {}", i + 1, get(c));
    }
    out.push_str("# HELP farol_http_request_duration_seconds Time to answer a request.\n");
    out.push_str("# TYPE farol_http_request_duration_seconds histogram\n");
    for (bound, c) in BUCKETS.iter().zip(&m.latency) {
        let _ = writeln!(out, "farol_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}", get(c));
    }
    let total = get(&m.latency[BUCKETS.len()]);
    let _ = writeln!(out, "farol_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "farol_http_request_duration_seconds_sum {}", get(&m.latency_micros) as f64 / 1e6);
    let _ = writeln!(out, "farol_http_request_duration_seconds_count {total}");
    out.push_str("# HELP farol_uploaded_reports_total Reports received through the API or the portal.\n");
    out.push_str("# TYPE farol_uploaded_reports_total counter\n");
    let _ = writeln!(out, "farol_uploaded_reports_total {}", get(&m.uploaded_reports));
    out.push_str("# HELP farol_uploaded_events_total New events from reports received through the server.\n");
    out.push_str("# TYPE farol_uploaded_events_total counter\n");
    let _ = writeln!(out, "farol_uploaded_events_total {}", get(&m.uploaded_events));
    if let Ok((totals, pending)) = app.blocking(|s| Ok((s.totals()?, s.unfinished_reports()?.len()))).await {
        out.push_str("# HELP farol_stored Objects in the store.\n# TYPE farol_stored gauge\n");
        let _ = writeln!(out, "farol_stored{{kind=\"events\"}} {}", totals.events);
        let _ = writeln!(out, "farol_stored{{kind=\"reports\"}} {}", totals.reports);
        let _ = writeln!(out, "farol_stored{{kind=\"rejects\"}} {}", totals.rejects);
        out.push_str("# HELP farol_reports_pending Reports archived and not yet processed to the end.\n");
        out.push_str("# TYPE farol_reports_pending gauge\n");
        let _ = writeln!(out, "farol_reports_pending {pending}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
