//! A real headless Chromium driven through chromedriver (W3C WebDriver), for console tests.
//!
//! The client is the few WebDriver commands the tests use, over hyper (already a
//! dependency): no extra crate, nothing to download. Each test gets its own chromedriver on
//! a free port and its own Chromium profile; [`with_browser`] takes a screenshot into the
//! test's directory when the test fails, and always ends both processes.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver's code for the Alt key.
const ALT: &str = "\u{E00A}";
/// How long `wait_text` waits.
const WAIT: Duration = Duration::from_secs(20);

/// Why a WebDriver command failed.
#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    #[error("chromedriver unreachable: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP to chromedriver: {0}")]
    Http(#[from] hyper::Error),
    #[error("chromedriver answer is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{error}: {message}")]
    Command { error: String, message: String },
}

/// The `file://` address of a test phone page under `tests/jssip` (`page`, which loads
/// `dist/{bundle}`) registering `user` with `password` on the router's WSS `addr`; fails,
/// naming how to build it, when the bundle is missing.
pub fn phone_page(
    page: &str,
    bundle: &str,
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jssip");
    assert!(
        dir.join("dist").join(bundle).exists(),
        "{}/dist/{bundle} is missing: tests/run.sh builds it, or by hand \
         `cd tests/jssip && npm ci && npm run build` (needs node and npm)",
        dir.display()
    );
    format!(
        "file://{}/{page}?ws=wss://127.0.0.1:{}&user={user}&password={password}",
        dir.display(),
        addr.port()
    )
}

/// Runs `test` with a browser; on failure, saves `failure.png` in `dir` and says where.
pub async fn with_browser<F, Fut>(dir: &Path, test: F)
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_browser_args(dir, &[], test).await;
}

/// [`with_browser`] with Chromium started with `extra` arguments too (for example
/// `--ignore-certificate-errors` for a router with a self-signed certificate).
pub async fn with_browser_args<F, Fut>(dir: &Path, extra: &[&str], test: F)
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let browser = Arc::new(Browser::start(dir, extra).await);
    let outcome = tokio::spawn(test(Arc::clone(&browser))).await;
    if let Err(failure) = outcome {
        let path = dir.join("failure.png");
        match browser.screenshot(&path).await {
            Ok(()) => eprintln!("console screenshot: {}", path.display()),
            Err(e) => eprintln!("no screenshot: {e}"),
        }
        browser.quit().await;
        std::panic::resume_unwind(failure.into_panic());
    }
    browser.quit().await;
}

/// A chromedriver process and its one Chromium session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    async fn start(dir: &Path, extra: &[&str]) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install the Debian package `{package}` (tests/run.sh does it)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group: ending it ends Chromium too, even if a test panicked.
            .process_group(0)
            .spawn()
            .unwrap();
        let mut browser = Browser {
            driver,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: String::new(),
        };
        let started = Instant::now();
        while browser.call(Method::GET, "/status", None).await.is_err() {
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = dir.join("chromium-profile");
        let profile = format!("--user-data-dir={}", profile.display());
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--allow-loopback-in-peer-connection",
            "--window-size=1280,1800",
            &profile,
        ];
        args.extend_from_slice(extra);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let answer = browser
            .call(Method::POST, "/session", Some(capabilities))
            .await
            .expect("Chromium session");
        browser.session = answer["sessionId"].as_str().unwrap().to_string();
        browser
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request parts");
        let answer = sender.send_request(request).await?;
        let ok = answer.status().is_success();
        let body = answer.into_body().collect().await?.to_bytes();
        let mut value: Value = serde_json::from_slice(&body)?;
        let value = value["value"].take();
        if !ok {
            return Err(WebDriverError::Command {
                error: value["error"].as_str().unwrap_or("?").into(),
                message: value["message"].as_str().unwrap_or("").into(),
            });
        }
        Ok(value)
    }

    /// A command on this session; panics with the driver's reason on failure.
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        match self.call(method, &path, body).await {
            Ok(value) => value,
            Err(e) => panic!("WebDriver {path}: {e}"),
        }
    }

    async fn element(&self, css: &str) -> Result<String, WebDriverError> {
        let path = format!("/session/{}/element", self.session);
        let body = json!({"using": "css selector", "value": css});
        let found = self.call(Method::POST, &path, Some(body)).await?;
        Ok(found[ELEMENT].as_str().unwrap_or_default().to_string())
    }

    /// `action` on the element `css` finds. A page that redraws itself (the wallboard,
    /// every second) may replace the element between the two commands: found again then.
    async fn on(&self, css: &str, action: &str, body: Option<Value>) -> Value {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let mut tries = 0;
        loop {
            let id = self
                .element(css)
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"));
            let path = format!("/session/{}/element/{id}/{action}", self.session);
            match self.call(method.clone(), &path, body.clone()).await {
                Err(WebDriverError::Command { error, .. })
                    if error == "stale element reference" && tries < 5 =>
                {
                    tries += 1;
                }
                Ok(value) => return value,
                Err(e) => panic!("WebDriver {path}: {e}"),
            }
        }
    }

    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn click(&self, css: &str) {
        self.on(css, "click", Some(json!({}))).await;
    }

    /// [`Browser::click`] on an element that a live page re-renders at any moment (the
    /// supervisor board): found and clicked again when it went stale in between.
    pub async fn click_live(&self, css: &str) {
        let mut last = None;
        for _ in 0..30 {
            let clicked = match self.element(css).await {
                Ok(id) => {
                    let path = format!("/session/{}/element/{id}/click", self.session);
                    self.call(Method::POST, &path, Some(json!({}))).await
                }
                Err(e) => Err(e),
            };
            match clicked {
                Ok(_) => return,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{css}: never clicked: {last:?}");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on(css, "value", Some(json!({ "text": text }))).await;
    }

    /// Picks the option with `value` in a `<select>`, as a user would (click).
    pub async fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"))
            .await;
    }

    /// The rendered text of an element.
    pub async fn text(&self, css: &str) -> String {
        let text = self.on(css, "text", None).await;
        text.as_str().unwrap_or_default().to_string()
    }

    /// Presses Alt+`key` on the focused page (a console shortcut).
    pub async fn alt(&self, key: char) {
        let key = key.to_string();
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": ALT}, {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key}, {"type": "keyUp", "value": ALT},
        ]}]});
        self.command(Method::POST, "/actions", Some(actions)).await;
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait_for(css, needle, |text| text.contains(needle))
            .await
    }

    /// Waits until the element's text is `expected` exactly (where a longer text may contain
    /// it: `unregistered` is not `registered`).
    pub async fn wait_text_is(&self, css: &str, expected: &str) {
        self.wait_for(css, expected, |text| text == expected).await;
    }

    async fn wait_for(&self, css: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            // Absent or hidden for now is the same as not there yet.
            let text = match self.element(css).await {
                Ok(_) => self.text(css).await,
                Err(_) => String::new(),
            };
            if done(&text) {
                return text;
            }
            assert!(
                started.elapsed() < WAIT,
                "{css} never showed {what:?}; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An attribute of an element (`None`: no such attribute).
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let value = self.on(css, &format!("attribute/{name}"), None).await;
        value.as_str().map(str::to_string)
    }

    /// Whether a control is enabled (a disabled button cannot be used).
    pub async fn enabled(&self, css: &str) -> bool {
        self.on(css, "enabled", None)
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// Whether an element is shown (not `hidden`, not inside a hidden one).
    pub async fn shown(&self, css: &str) -> bool {
        self.on(css, "displayed", None)
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// Sets the window's size (screenshots as an agent's screen shows the page).
    pub async fn resize(&self, width: u32, height: u32) {
        let rect = json!({"width": width, "height": height});
        self.command(Method::POST, "/window/rect", Some(rect)).await;
    }

    /// Saves what the window shows as a PNG.
    pub async fn screenshot(&self, path: &PathBuf) -> Result<(), WebDriverError> {
        let path_in_driver = format!("/session/{}/screenshot", self.session);
        let png = self.call(Method::GET, &path_in_driver, None).await?;
        let png = base64_decode(png.as_str().unwrap_or_default());
        std::fs::write(path, png)?;
        Ok(())
    }

    async fn quit(&self) {
        let path = format!("/session/{}", self.session);
        if let Err(e) = self.call(Method::DELETE, &path, None).await {
            eprintln!("closing Chromium: {e}");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started, by their group id.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (screenshots); nothing else in the tests needs it.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        .map(value)
        .collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
            let bytes = n.to_be_bytes();
            bytes[1..chunk.len()].to_vec()
        })
        .collect()
}
