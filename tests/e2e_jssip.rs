//! A real third-party WebRTC SIP phone: JsSIP 3.13.8 in headless Chromium
//! (tests/jssip/phone.html, with dist/jssip.js bundled by `npm run build`), against a router
//! with SIP over secure WebSocket and a self-signed certificate.

mod common;

use common::browser::with_browser_args;
use common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Chromium trusts the router's self-signed certificate (WSS). The page is a `file://`
/// one: it may open WebSockets and capture the (fake) microphone, and a page capturing
/// plays the remote audio without a click, so no autoplay flag either.
const CHROMIUM_ARGS: [&str; 1] = ["--ignore-certificate-errors"];

/// The `file://` address of the JsSIP phone page for `user` on the router's WSS `addr`;
/// fails, naming how to build it, when the JsSIP bundle is missing.
fn phone_page(addr: SocketAddr, user: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jssip");
    assert!(
        dir.join("dist/jssip.js").exists(),
        "{}/dist/jssip.js is missing: tests/run.sh builds it, or by hand \
         `cd tests/jssip && npm ci && npm run build` (needs node and npm)",
        dir.display()
    );
    let password = SEATS.iter().find(|(u, _)| *u == user).unwrap().1;
    format!(
        "file://{}/phone.html?ws=wss://127.0.0.1:{}&user={user}&password={password}",
        dir.display(),
        addr.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_registers_over_wss() {
    let dir = temp_dir("jssip-register");
    let (cert, key, _) = tls::self_signed(&dir);
    let mut router = start(Options {
        sip_ws: true,
        tls: Some((cert, key)),
        ..Options::default()
    })
    .await;
    let wss = router.running.as_ref().unwrap().sip_wss.unwrap();
    let page = phone_page(wss, "arm1");
    with_browser_args(&dir, &CHROMIUM_ARGS, |browser| async move {
        browser.goto(&page).await;
        browser.wait_text_is("#reg", "registered").await;
        assert!(
            eventually(Duration::from_secs(2), || router
                .metric("sas_seats{role=\"arm\",state=\"available\"}")
                == 1.0)
            .await,
            "arm1 available after JsSIP's REGISTER"
        );
        router.stop().await;
    })
    .await;
}
