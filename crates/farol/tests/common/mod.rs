//! What the command-line tests share: a fresh farol directory and running the real binary.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) struct Dir {
    _tmp: tempfile::TempDir,
    pub(crate) path: PathBuf,
}

impl Dir {
    /// A farol directory at `path`, removed with `tmp`.
    pub(crate) fn new(tmp: tempfile::TempDir, path: PathBuf) -> Dir {
        Dir { _tmp: tmp, path }
    }
}

pub(crate) fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

pub(crate) fn init() -> Dir {
    init_with(&[])
}

/// A farol directory made by `farol init` with these options, and the example feeds.
pub(crate) fn init_with(options: &[&str]) -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("farol");
    let out = Command::new(env!("CARGO_BIN_EXE_farol")).arg("init").arg(&path).args(options).output().unwrap();
    assert!(out.status.success());
    for feed in ["example-sinkhole", "partner-intelmq"] {
        std::fs::copy(examples().join(format!("feeds/{feed}.toml")), path.join(format!("feeds.d/{feed}.toml")))
            .unwrap();
    }
    Dir { _tmp: tmp, path }
}

/// A farol directory as `init` makes it, whose farol.toml names the PostgreSQL schema's database
/// as its store.
pub(crate) fn init_on_postgres(schema: &farol_store::testing::PostgresSchema) -> Dir {
    let d = init();
    let path = d.path.join("farol.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, toml.replace("path = \"data/farol.db\"", &format!("url = \"{}\"", schema.url))).unwrap();
    d
}

/// The farol binary on a farol directory, with these arguments, to run as the test needs.
pub(crate) fn command(dir: &Dir, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_farol"));
    c.arg("-d").arg(&dir.path).args(args);
    c
}

pub(crate) fn farol(dir: &Dir, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn write(dir: &Dir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

/// `farol serve` on a port the system picks (`--listen 127.0.0.1:0`), with these extra
/// arguments, once it accepts connections: the port is the one it says it serves on, within a
/// minute.
pub(crate) fn serve(d: &Dir, extra: &[&str]) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend(extra);
    let mut server =
        command(d, &args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let out = std::io::BufReader::new(server.stdout.take().unwrap());
    let (said, port) = std::sync::mpsc::channel();
    // Reads all its output, so that it never blocks writing, and passes the port on.
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let addr = line.strip_prefix("farol serving on http://").and_then(|a| a.split_whitespace().next());
            if let Some(a) = addr.and_then(|a| a.parse::<std::net::SocketAddr>().ok()) {
                let _ = said.send(a.port());
            }
        }
    });
    match port.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(port) => (server, port),
        Err(_) => {
            let _ = server.kill();
            server.wait().unwrap();
            panic!("farol serve did not start");
        }
    }
}
