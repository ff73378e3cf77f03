//! The phone's SIP side: raw SIP text over one WebSocket (`sip` subprotocol), as JsSIP
//! does. It registers with an MD5 digest, then serves requests one at a time: an INVITE
//! gets 200 with a WebRTC answer ([`crate::peer::Call`]), a BYE 200 and the call ends, an
//! ACK nothing, anything else 200. Only what a router talking to its seats needs.

use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use sas_router::sip::digest::{DigestAlgorithm, QopAuth, compute_response, ha1};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Counts;
use crate::peer::Call;
use crate::sip_text::{first_line, headers, param, response};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Registration length: longer than any load run, so no refresh is needed.
const EXPIRES_S: u32 = 3600;

pub struct Phone {
    ws: Ws,
    user: String,
    /// `sip:…@….invalid;transport=ws`: not dialable, as a browser's.
    contact: String,
    counts: Arc<Counts>,
    /// The current call, if any.
    call: Option<Call>,
}

impl Phone {
    /// Registers `user`, then answers calls until `calls` of them have been hung up.
    pub async fn run(
        url: &str,
        user: &str,
        password: &str,
        calls: u64,
        counts: Arc<Counts>,
    ) -> anyhow::Result<()> {
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "sip".parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .context("WebSocket")?;
        let mut phone = Phone {
            ws,
            user: user.to_owned(),
            contact: format!("<sip:{user}@{user}.invalid;transport=ws>"),
            counts,
            call: None,
        };
        phone.register(password).await?;
        Counts::inc(&phone.counts.registered);
        let mut ended = 0;
        while ended < calls {
            let request = phone.recv().await?;
            let method = request.split(' ').next().unwrap_or_default();
            match method {
                "INVITE" => phone.answer(&request, ended).await?,
                "BYE" => {
                    phone.send(response(&request, "200 OK", None, None)).await?;
                    if let Some(call) = phone.call.take() {
                        call.hang_up().await;
                    }
                    Counts::inc(&phone.counts.ended);
                    ended += 1;
                }
                // ACKs need nothing; responses (to nothing we sent) are ignored.
                "ACK" | "SIP/2.0" => {}
                _ => phone.send(response(&request, "200 OK", None, None)).await?,
            }
        }
        Ok(())
    }

    /// REGISTER, 401 with challenges, REGISTER answering the MD5 one, 200.
    async fn register(&mut self, password: &str) -> anyhow::Result<()> {
        self.send(self.register_request(1, None)).await?;
        let challenge = self.recv().await?;
        if !challenge.starts_with("SIP/2.0 401") {
            bail!("REGISTER: expected 401, got {}", first_line(&challenge));
        }
        let md5 = headers(&challenge, "WWW-Authenticate")
            .into_iter()
            .find(|c| c.contains("algorithm=MD5"))
            .context("no MD5 challenge")?;
        let (realm, nonce) = (param(md5, "realm"), param(md5, "nonce"));
        let ha1 = ha1(DigestAlgorithm::Md5, &self.user, realm, password);
        let cnonce = format!("{:016x}", rand::random::<u64>());
        let uri = "sip:127.0.0.1";
        let qop = QopAuth {
            nc: "00000001",
            cnonce: &cnonce,
        };
        let answer = compute_response(
            DigestAlgorithm::Md5,
            &ha1,
            nonce,
            "REGISTER",
            uri,
            Some(qop),
        );
        let authorization = format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{answer}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\"",
            self.user
        );
        self.send(self.register_request(2, Some(authorization)))
            .await?;
        let ok = self.recv().await?;
        if !ok.starts_with("SIP/2.0 200") {
            bail!("REGISTER: {}", first_line(&ok));
        }
        Ok(())
    }

    fn register_request(&self, cseq: u32, authorization: Option<String>) -> String {
        let user = &self.user;
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/WS {user}.invalid;branch=z9hG4bK{user}r{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:{user}@127.0.0.1>\r\n\
             From: <sip:{user}@127.0.0.1>;tag={user}\r\n\
             Call-ID: register-{user}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: {};expires={EXPIRES_S}\r\n\
             Expires: {EXPIRES_S}\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            self.contact
        )
    }

    /// 200 with our WebRTC answer, or 488 if the offer cannot be answered.
    async fn answer(&mut self, invite: &str, nth: u64) -> anyhow::Result<()> {
        let offer = invite.split("\r\n\r\n").nth(1).unwrap_or_default();
        let tag = format!("{}-{nth}", self.user);
        let reply = match Call::answer(offer, Arc::clone(&self.counts)).await {
            Ok((call, sdp)) => {
                // A new INVITE while in a call (the router never does this to a seat):
                // the old call goes.
                if let Some(old) = self.call.replace(call) {
                    old.hang_up().await;
                }
                Counts::inc(&self.counts.answered);
                response(invite, "200 OK", Some(&tag), Some((&self.contact, &sdp)))
            }
            Err(e) => {
                eprintln!("{}: cannot answer the offer: {e:#}", self.user);
                Counts::inc(&self.counts.refused);
                response(invite, "488 Not Acceptable Here", Some(&tag), None)
            }
        };
        self.send(reply).await
    }

    async fn send(&mut self, text: String) -> anyhow::Result<()> {
        self.ws.send(Message::text(text)).await.context("send")
    }

    /// The next SIP message (text frame); an error once the router closes the socket.
    async fn recv(&mut self) -> anyhow::Result<String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(Message::Close(_))) | None => bail!("the router closed the WebSocket"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("WebSocket"),
            }
        }
    }
}
