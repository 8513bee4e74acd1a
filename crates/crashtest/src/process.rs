//! The real `optimist serve`, started on a loopback port of its choosing and killed with SIGKILL.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// Starts `binary serve` on `data_dir` and waits until it accepts connections. The
    /// server's log is appended to `log` (the harness's own file, not storage under test).
    ///
    /// The server binds port 0 and the harness reads the port it got from its log: a port
    /// picked here and released before the server binds it could be taken in between by
    /// another harness's server, and this run would then test someone else's data.
    pub(crate) fn start(binary: &Path, data_dir: &Path, log: &Path) -> Result<Server, String> {
        Server::start_with(binary, data_dir, log, &[])
    }

    /// `start`, with more arguments to `serve`.
    #[allow(clippy::disallowed_types)]
    pub(crate) fn start_with(
        binary: &Path,
        data_dir: &Path,
        log: &Path,
        args: &[&str],
    ) -> Result<Server, String> {
        let log_path = log;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        // Earlier starts appended to the same log: only what this start writes counts.
        let from = log.metadata().map_err(|e| e.to_string())?.len();
        let child = Command::new(binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let started = Instant::now();
        loop {
            if let Some(addr) = listening_address(log_path, from) {
                server.addr = addr;
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Ok(server);
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("the server exited at start: {status}"));
            }
            if started.elapsed() > Duration::from_secs(30) {
                server.kill();
                return Err("the server did not listen within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL: no shutdown, no final sync.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the servers wrote to `log` after byte `from`: over a long soak the log grows to
/// megabytes, and a start polls it every few milliseconds. The log is the harness's own
/// file, not storage under test.
#[allow(clippy::disallowed_types)]
fn log_since(log: &Path, from: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log)?;
    file.seek(SeekFrom::Start(from))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    Ok(text)
}

/// How many lines the servers wrote to `log` after byte `from` contain `needle`.
pub(crate) fn log_lines_since(log: &Path, from: u64, needle: &str) -> Result<u64, String> {
    let text = log_since(log, from).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    Ok(text
        .split(|&b| b == b'\n')
        .filter(|line| line.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .count() as u64)
}

/// The address in the server's `listening` line written to `log` after byte `from`, e.g.
/// `... INFO listening address=127.0.0.1:41234 scheme="http" auth="none"`.
fn listening_address(log: &Path, from: u64) -> Option<SocketAddr> {
    let text = log_since(log, from).ok()?;
    parse_listening_address(&String::from_utf8_lossy(&text))
}

fn parse_listening_address(text: &str) -> Option<SocketAddr> {
    // Only whole lines: the server may be half way through writing this one.
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n') && line.contains(" listening "))
        .find_map(|line| {
            let rest = &line[line.find("address=")? + "address=".len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
}

/// `optimist` next to the running executable (`target/<profile>/`), as cargo lays it out.
pub fn default_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().unwrap_or(Path::new("."));
    let beside = dir.join("optimist");
    if beside.exists() {
        beside
    } else {
        dir.parent().unwrap_or(dir).join("optimist")
    }
}

#[cfg(test)]
mod tests {
    use super::{log_lines_since, parse_listening_address};

    #[test]
    fn log_lines_are_counted_from_the_offset_on() {
        let log = std::env::temp_dir().join(format!("crashtest-log-{}", std::process::id()));
        let earlier = "x  INFO compacted index=a\n";
        std::fs::write(
            &log,
            format!(
                "{earlier}x  INFO compacted index=b\nx  INFO listening\nx  INFO compacted index=c"
            ),
        )
        .unwrap();
        let from = earlier.len() as u64;
        assert_eq!(log_lines_since(&log, from, " compacted ").unwrap(), 2);
        assert_eq!(log_lines_since(&log, 0, " compacted ").unwrap(), 3);
        assert_eq!(log_lines_since(&log, 0, " recovered ").unwrap(), 0);
        std::fs::remove_file(&log).unwrap();
    }

    #[test]
    fn the_port_comes_from_the_listening_line() {
        let log = "2026-11-26T09:40:01.1Z  INFO data directory open data_dir=/tmp/x indices=0\n\
                   2026-11-26T09:40:01.2Z  INFO listening address=127.0.0.1:41234 scheme=\"http\" auth=\"none\"\n";
        assert_eq!(
            parse_listening_address(log),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(parse_listening_address("INFO data directory open\n"), None);
        // A line cut mid-write (the server is still writing it) is not an address yet.
        assert_eq!(
            parse_listening_address("INFO listening address=127.0.0.1:4"),
            None
        );
    }
}
