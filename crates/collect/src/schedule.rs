//! When collectors run: every interval (`30m`, `6h`, `1d`) or by a cron expression
//! (`0 5 * * *`, in UTC).

use std::str::FromStr;
use std::time::Duration;

use farol_model::Timestamp;

use crate::{Collector, Context, run_once};

/// A feed's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>, String),
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every(d) => match d.as_secs() {
                s if s % 86_400 == 0 => write!(f, "every {}d", s / 86_400),
                s if s % 3600 == 0 => write!(f, "every {}h", s / 3600),
                s if s % 60 == 0 => write!(f, "every {}m", s / 60),
                s => write!(f, "every {s}s"),
            },
            Schedule::Cron(_, text) => write!(f, "cron {text}"),
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Schedule, String> {
        let s = s.trim();
        let interval = s.strip_suffix(['s', 'm', 'h', 'd']).and_then(|n| n.parse::<u64>().ok()).map(|n| {
            let unit = match s.chars().last() {
                Some('s') => 1,
                Some('m') => 60,
                Some('h') => 3600,
                _ => 86_400,
            };
            Duration::from_secs(n.saturating_mul(unit))
        });
        if let Some(d) = interval {
            return if d < Duration::from_secs(10) {
                Err(format!("schedule {s:?}: run at most every 10 seconds"))
            } else {
                Ok(Schedule::Every(d))
            };
        }
        croner::Cron::from_str(s).map(|c| Schedule::Cron(Box::new(c), s.to_owned())).map_err(|e| {
            format!("schedule {s:?}: expected an interval such as 30m, 6h or 1d, or a cron expression such as \"0 5 * * *\" ({e})")
        })
    }
}

impl Schedule {
    /// How long from `now` to the next run.
    pub fn delay(&self, now: Timestamp) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(cron, _) => {
                let now = chrono_now(now);
                cron.find_next_occurrence(&now, false)
                    .ok()
                    .and_then(|next| (next - now).to_std().ok())
                    .unwrap_or(Duration::from_secs(3600))
            }
        }
    }
}

fn chrono_now(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.micros()).unwrap_or_default()
}

/// Runs every scheduled collector until `shutdown` resolves: each feed in its own task, one run
/// at a time, its errors recorded and logged, never stopping the others.
pub async fn run_schedules(ctx: Context, collectors: Vec<Collector>, shutdown: impl std::future::Future<Output = ()>) {
    let mut tasks = tokio::task::JoinSet::new();
    for collector in collectors.into_iter().filter(|c| c.schedule.is_some()) {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let Some(schedule) = collector.schedule.clone() else { return };
            loop {
                // Interval feeds run at start, then every interval; cron feeds wait for their time.
                if let Schedule::Cron(..) = schedule {
                    tokio::time::sleep(schedule.delay(Timestamp::now())).await;
                }
                match run_once(&ctx, &collector).await {
                    Ok(run) => tracing::info!(feed = %collector.feed.name, reports = run.ingested.len(), unchanged = run.unchanged, "collected"),
                    Err(e) => tracing::warn!(feed = %collector.feed.name, error = %e, "collection failed"),
                }
                if let Schedule::Every(d) = schedule {
                    tokio::time::sleep(d).await;
                }
            }
        });
    }
    shutdown.await;
    tasks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse() {
        assert!(matches!("30m".parse::<Schedule>(), Ok(Schedule::Every(d)) if d == Duration::from_secs(1800)));
        assert!(matches!("1d".parse::<Schedule>(), Ok(Schedule::Every(d)) if d == Duration::from_secs(86_400)));
        assert!("5s".parse::<Schedule>().unwrap_err().contains("at most every 10 seconds"));
        let cron: Schedule = "0 5 * * *".parse().unwrap();
        assert_eq!(cron.to_string(), "cron 0 5 * * *");
        assert_eq!("90m".parse::<Schedule>().unwrap().to_string(), "every 90m");
        let at = Timestamp::parse("2024-06-01T04:00:00Z").unwrap();
        assert_eq!(cron.delay(at), Duration::from_secs(3600));
        assert!("sometimes".parse::<Schedule>().unwrap_err().contains("expected an interval"));
    }
}
