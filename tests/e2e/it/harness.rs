//! Starts what a journey needs (a display, tauri-driver, a fresh data directory) and stops
//! it all when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct App {
    pub client: Client,
    pub data_dir: tempfile::TempDir,
    /// The webview's own storage (language choice, cache): one per app, so that journeys
    /// running at once do not see each other's (one switching to English, say).
    _web_home: tempfile::TempDir,
    _driver: Proc,
    _display: Option<Proc>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// target/debug, found from this test binary's own path (target/debug/deps/it-…).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn app_path() -> PathBuf {
    let path = std::env::var_os("BINHYEN_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("binhyen-desktop"));
    assert!(
        path.exists(),
        "the desktop app is not built at {}: run `cargo build -p binhyen-desktop` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return p.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo_bin = home.join(".cargo/bin/tauri-driver");
    if cargo_bin.exists() {
        cargo_bin
    } else {
        "tauri-driver".into()
    }
}

fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not start listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Screenshots go here, so that a person can look at what the journey saw.
pub fn screenshot_dir() -> PathBuf {
    let dir = target_dir().join("e2e-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl App {
    /// Starts the app on an empty data directory (so it creates the demo station) and
    /// signs in as the demo station's chief.
    pub async fn start() -> App {
        let app = App::start_in(tempfile::tempdir().unwrap()).await;
        app.sign_in("truong", binhyen_store::keys::DEMO_PASSPHRASE)
            .await;
        app
    }

    /// Starts the app on `data_dir` (an officer unlocks it through the window).
    pub async fn start_in(data_dir: tempfile::TempDir) -> App {
        App::start_with(data_dir, &[]).await
    }

    /// Starts the app on `data_dir` with extra environment variables.
    pub async fn start_with(data_dir: tempfile::TempDir, envs: &[(&str, &str)]) -> App {
        let (display, display_proc) = match std::env::var("DISPLAY") {
            Ok(d) if !d.is_empty() => (d, None),
            _ => {
                // One display per app, also when several journeys run at once.
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = 100
                    + (std::process::id() % 400) * 8
                    + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 8;
                let child = Command::new("Xvfb")
                    .args([
                        format!(":{n}"),
                        "-screen".into(),
                        "0".into(),
                        "1366x768x24".into(),
                        "-nolisten".into(),
                        "tcp".into(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("Xvfb is needed for the webview tests (apt-get install xvfb)");
                let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
                let start = Instant::now();
                while !socket.exists() {
                    assert!(
                        start.elapsed() < Duration::from_secs(20),
                        "Xvfb :{n} did not start"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                (format!(":{n}"), Some(Proc(child)))
            }
        };
        let port = free_port();
        let native_port = free_port();
        let web_home = tempfile::tempdir().unwrap();
        let driver = Command::new(tauri_driver())
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("DISPLAY", &display)
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("BINHYEN_DATA_DIR", data_dir.path())
            // The journeys start on the demo station, as scripts/run.sh does; the set-up
            // journey turns this off.
            .env("BINHYEN_DEMO", "1")
            .env("XDG_DATA_HOME", web_home.path().join("data"))
            .env("XDG_CACHE_HOME", web_home.path().join("cache"))
            .env_remove("BINHYEN_PASSWORD")
            .env_remove("BINHYEN_USER")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tauri-driver is needed for the webview tests (cargo install tauri-driver)");
        let driver = Proc(driver);
        wait_for_port(port, "tauri-driver");
        let caps = serde_json::json!({"tauri:options": {"application": app_path()}});
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        // tauri-driver listens before WebKitWebDriver behind it is ready; under load the
        // first request can be cut short. A few tries, then the real error.
        let mut attempt = 0;
        let client = loop {
            attempt += 1;
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if attempt < 4 => {
                    eprintln!("WebDriver session, attempt {attempt}: {e}; trying again");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => panic!("could not open a WebDriver session on the app: {e}"),
            }
        };
        App {
            client,
            data_dir,
            _web_home: web_home,
            _driver: driver,
            _display: display_proc,
        }
    }
}
