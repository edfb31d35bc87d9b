//! The HTTP(S) collector: conditional GET with ETag and Last-Modified, timeouts, a size limit,
//! retries with backoff, and no request or redirect to a loopback, private or link-local
//! address unless the feed allows it. A download is written to a file and ingested only when
//! it is complete.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use farol_model::error_chain;
use farol_pipeline::Feed;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;

use crate::{Context, Error, Run, ingest_temporary};

/// `[feeds.NAME.collector]` with `kind = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub url: String,
    /// Extra request headers; `${VAR}` in a value is read from the environment
    /// (`"Auth-Key" = "${ABUSECH_KEY}"`), so that secrets stay out of farol.toml.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTTP Basic credentials, with the same `${VAR}` expansion.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Seconds for the whole download.
    #[serde(default = "defaults::timeout")]
    pub timeout_secs: u64,
    /// The largest download accepted, in bytes.
    #[serde(default = "defaults::max_bytes")]
    pub max_bytes: u64,
    /// Allow loopback, private and link-local addresses (an internal mirror, a test server).
    #[serde(default)]
    pub allow_private: bool,
    /// Attempts after the first one, for timeouts, connection errors, 429 and 5xx answers.
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// Milliseconds before the first retry; each further retry waits twice as long.
    #[serde(default = "defaults::retry_delay")]
    pub retry_delay_ms: u64,
    /// The report's name, when the URL's last path segment does not say what it is.
    pub name: Option<String>,
}

mod defaults {
    pub(super) fn timeout() -> u64 {
        300
    }
    pub(super) fn max_bytes() -> u64 {
        1 << 30
    }
    pub(super) fn retries() -> u32 {
        3
    }
    pub(super) fn retry_delay() -> u64 {
        1000
    }
}

/// What the collector remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Addresses a collector must not reach unless the feed allows it: loopback, private,
/// link-local, unique-local, carrier-grade NAT, unspecified, multicast and reserved ranges.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xFE) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xFE00) == 0xFC00
                || (first & 0xFFC0) == 0xFE80
        }
    }
}

/// Resolves names and keeps only the addresses the feed may reach.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.iter().copied().filter(|a| !forbidden(a.ip())).collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves only to loopback, private or link-local addresses; set allow_private = true \
                     in the feed's collector if it is an internal server"
                )
                .into();
                return Err(error);
            }
            let iter: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(iter)
        })
    }
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub(crate) fn client(config: &HttpConfig) -> Result<reqwest::Client, Error> {
    install_crypto();
    let allow_private = config.allow_private;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("more than 5 redirects");
        }
        match redirect_refused(attempt.url(), allow_private) {
            Some(reason) => attempt.error(reason),
            None => attempt.follow(),
        }
    });
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(config.timeout_secs))
        .user_agent(concat!("farol/", env!("CARGO_PKG_VERSION")))
        .redirect(policy);
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build().map_err(|e| Error::Fetch(format!("cannot set up the HTTP client: {e}")))
}

/// Why a redirect must not be followed. Names are checked when they are resolved (the guarded
/// resolver); literal addresses here.
fn redirect_refused(url: &reqwest::Url, allow_private: bool) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!("a redirect to a {} URL", url.scheme()));
    }
    match literal_ip(url) {
        Some(ip) if forbidden(ip) && !allow_private => Some(format!("a redirect to the private address {ip}")),
        _ => None,
    }
}

pub(crate) fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// `${VAR}` replaced by the environment variable's value.
pub fn expand(value: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| Error::Fetch(format!("unterminated ${{...}} in {value:?}")))?;
        let var = &rest[start + 2..start + end];
        let v = std::env::var(var).map_err(|_| {
            Error::Fetch(format!("the environment variable {var} is not set (the collector's configuration uses it)"))
        })?;
        out.push_str(&v);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The URL without credentials, for logs and errors.
pub(crate) fn shown(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// The configuration's URL, if farol may fetch it: http(s), and not a loopback, private or
/// link-local address unless allowed.
pub(crate) fn checked_url(config: &HttpConfig) -> Result<reqwest::Url, Error> {
    let url = reqwest::Url::parse(&config.url).map_err(|e| Error::Fetch(format!("url {:?}: {e}", config.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Fetch(format!("url {}: only http and https are collected", shown(&url))));
    }
    if let Some(ip) = literal_ip(&url)
        && forbidden(ip)
        && !config.allow_private
    {
        return Err(Error::Fetch(format!(
            "url {}: {ip} is a loopback, private or link-local address; set allow_private = true (in the feed's \
             collector, or the partner) if it is an internal server",
            shown(&url)
        )));
    }
    Ok(url)
}

/// A GET with the configuration's headers and credentials (and `extra`), retried with backoff
/// after timeouts, connection errors, 429 and 5xx answers.
pub(crate) async fn get(
    client: &reqwest::Client,
    config: &HttpConfig,
    url: &reqwest::Url,
    extra: &[(reqwest::header::HeaderName, String)],
) -> Result<reqwest::Response, Error> {
    let mut attempt = 0;
    loop {
        let mut request = client.get(url.clone());
        for (k, v) in &config.headers {
            request = request.header(k.as_str(), expand(v)?);
        }
        if let Some(user) = &config.username {
            request = request.basic_auth(expand(user)?, config.password.as_deref().map(expand).transpose()?);
        }
        for (k, v) in extra {
            request = request.header(k, v);
        }
        let result = request.send().await;
        let retryable = match &result {
            Ok(r) => r.status().is_server_error() || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS,
            Err(e) => e.is_timeout() || e.is_connect(),
        };
        if retryable && attempt < config.retries {
            let delay = config.retry_delay_ms.saturating_mul(1 << attempt.min(10));
            tracing::info!(url = %shown(url), attempt, delay_ms = delay, "retrying the download");
            tokio::time::sleep(Duration::from_millis(delay)).await;
            attempt += 1;
            continue;
        }
        return result.map_err(|e| Error::Fetch(format!("downloading {} failed: {}", shown(url), error_chain(&e))));
    }
}

pub(crate) async fn run(ctx: &Context, feed: &Feed, config: &HttpConfig) -> Result<Run, Error> {
    let (store, workdir) = (ctx.store.clone(), ctx.workdir.as_path());
    let url = checked_url(config)?;
    let client = client(config)?;
    let state: State = {
        let (store, name) = (store.clone(), feed.name.clone());
        let text = tokio::task::spawn_blocking(move || store.collector_state(&name)).await.ok().transpose()?.flatten();
        text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
    };
    let mut conditions = Vec::new();
    if let Some(etag) = &state.etag {
        conditions.push((reqwest::header::IF_NONE_MATCH, etag.clone()));
    }
    if let Some(lm) = &state.last_modified {
        conditions.push((reqwest::header::IF_MODIFIED_SINCE, lm.clone()));
    }
    let response = get(&client, config, &url, &conditions).await?;
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Run { unchanged: true, ..Run::default() });
    }
    if !response.status().is_success() {
        return Err(Error::Fetch(format!(
            "downloading {} failed: the server answered {}",
            shown(&url),
            response.status()
        )));
    }
    let header =
        |h: reqwest::header::HeaderName| response.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let new_state =
        State { etag: header(reqwest::header::ETAG), last_modified: header(reqwest::header::LAST_MODIFIED) };
    let name = config.name.clone().or_else(|| {
        response.url().path_segments().and_then(|mut s| s.next_back()).filter(|s| !s.is_empty()).map(str::to_owned)
    });
    std::fs::create_dir_all(workdir)?;
    let tmp = workdir.join(format!("download-{}-{}.part", feed.name, std::process::id()));
    let downloaded = download(response, &tmp, config.max_bytes, &url).await;
    if let Err(e) = downloaded {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    let ingested = ingest_temporary(ctx, feed, &tmp, name).await?;
    let text = serde_json::to_string(&new_state).unwrap_or_default();
    let name = feed.name.clone();
    tokio::task::spawn_blocking(move || store.set_collector_state(&name, &text)).await.ok().transpose()?;
    Ok(Run { ingested, unchanged: false })
}

/// Streams the body into `path`, refusing more than `max` bytes; the file is complete only if
/// this returns Ok.
pub(crate) async fn download(
    response: reqwest::Response,
    path: &Path,
    max: u64,
    url: &reqwest::Url,
) -> Result<(), Error> {
    if let Some(len) = response.content_length().filter(|&l| l > max) {
        return Err(Error::Fetch(format!("{} is {len} bytes, more than max_bytes ({max})", shown(url))));
    }
    let mut file = tokio::fs::File::create(path).await?;
    let mut total = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| Error::Fetch(format!("the download of {} was cut: {}", shown(url), error_chain(&e))))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(Error::Fetch(format!("{} is more than max_bytes ({max}); nothing was ingested", shown(url))));
        }
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip} should be forbidden");
        }
        for ip in ["8.8.8.8", "193.136.0.1", "2001:690::1", "198.51.100.1"] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn redirects_to_private_addresses_or_other_schemes_are_refused() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            redirect_refused(&url("http://169.254.169.254/latest/meta-data/"), false).as_deref(),
            Some("a redirect to the private address 169.254.169.254")
        );
        assert!(redirect_refused(&url("http://[::1]:8080/"), false).is_some());
        assert!(redirect_refused(&url("http://169.254.169.254/"), true).is_none());
        assert!(redirect_refused(&url("https://feeds.example/x"), false).is_none());
        assert_eq!(redirect_refused(&url("file:///etc/passwd"), true).as_deref(), Some("a redirect to a file URL"));
    }

    #[test]
    fn environment_expansion() {
        assert_eq!(expand("plain").unwrap(), "plain");
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand("a${PATH}b").unwrap(), format!("a{path}b"));
        assert!(expand("${FAROL_SURELY_UNSET_VARIABLE}").unwrap_err().to_string().contains("is not set"));
        assert!(expand("${oops").unwrap_err().to_string().contains("unterminated"));
    }

    #[test]
    fn credentials_are_not_shown() {
        let url = reqwest::Url::parse("https://user:secret@feeds.example/x").unwrap();
        assert_eq!(shown(&url), "https://feeds.example/x");
    }
}
