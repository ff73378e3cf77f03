//! Attended transfer from a SIP phone (RFC 3891 Replaces): an ARM talking with a caller
//! (call X) dialled a doctor from its phone (call Y, where the phone is the caller), then
//! REFERs X with `Replaces` naming Y. The doctor's dialog is re-INVITEd onto X's relay, its
//! leg moves from Y to X, the switchboard hands X over ([`Switchboard::replace`]) and both
//! of the ARM's legs are released. Until the doctor's answer comes back nothing changes,
//! so a refused re-INVITE leaves both calls as they were.
//!
//! [`Switchboard::replace`]: crate::call::Switchboard::replace

use super::{CallDriver, CallEvent, LegMap};
use crate::media::relay::Leg;
use crate::media::sdp::SessionDescription;
use crate::sip::replaces::Replaces;

use crate::store::record::EventKind;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::sip::{Header, StatusCode};
use std::collections::HashMap;

/// An attended transfer waiting for the doctor's answer to its re-INVITE.
pub struct Handover {
    /// The caller's call (X) and the seat handing it over.
    call: String,
    seat: String,
    /// The consultation call (Y) and the seat answering it there.
    consult: String,
    target: String,
    /// SIP Call-ID of the target's leg.
    target_leg: String,
    /// X's relay side the target is moved to, and the offer sent for it (with its
    /// version).
    side: Leg,
    offer: (SessionDescription, u64),
    /// Final status of the re-INVITE (`None`: no response) and its answer.
    status: Option<u16>,
    answer: Vec<u8>,
}

impl CallDriver {
    /// `seat`'s REFER on its leg of `call` carries `Replaces`: checks it names a call the
    /// seat's phone placed and a seat answered, then re-INVITEs that seat towards `call`'s
    /// relay. The REFER is answered when the outcome is known.
    pub(super) fn refer_replaces(
        &mut self,
        call: &str,
        seat: &str,
        replaces: &Replaces,
        handle: &TransactionHandle,
        legs: &mut LegMap,
        by_leg: &HashMap<String, String>,
    ) -> Result<(), StatusCode> {
        let gone = StatusCode::CallTransactionDoesNotExist;
        let consult = by_leg.get(&replaces.call_id).ok_or(gone.clone())?.clone();
        let y = legs.get(&consult).ok_or(gone.clone())?;
        let id = y.trunk.id();
        if y.trunk_leg != replaces.call_id
            || !replaces.matches(&id.call_id, &id.local_tag, &id.remote_tag)
        {
            return Err(gone);
        }
        let target_leg = y.seats.iter().rev().find(|s| s.answered).ok_or(gone)?;
        // Its WebRTC connection belongs to Y's relay; moving it is not supported.
        if target_leg.webrtc.is_some() {
            return Err(StatusCode::NotImplemented);
        }
        let target = target_leg.seat.clone();
        if !self.router.may_hand_over(call, seat, &consult, &target) {
            return Err(StatusCode::Forbidden);
        }
        let (target_media, dialog) = (target_leg.media, target_leg.dialog.clone());
        let target_sip = target_leg.sip.clone();
        let x = legs
            .get_mut(call)
            .ok_or(StatusCode::CallTransactionDoesNotExist)?;
        let side = x.free_media();
        // Same dialog, same SDP session as Y's (the Router keeps its versions).
        let ours = (self.sdp_ip, x.relay.local_addr(side).port(), x.codecs.law);
        let (offer, version) = (self.router)
            .sdp_handover_offer((&consult, target_media.idx()), ours)
            .ok_or(StatusCode::CallTransactionDoesNotExist)?;
        if let Some(s) = x.seats.iter_mut().find(|s| s.seat == seat && s.answered) {
            s.referred = Some(handle.clone());
        }
        tracing::info!(%call, %seat, %consult, %target, "attended transfer: re-INVITE");
        let mut handover = Handover {
            call: call.into(),
            seat: seat.into(),
            consult,
            target,
            target_leg: target_sip,
            side,
            offer: (offer.clone(), version),
            status: None,
            answer: Vec::new(),
        };
        let events = self.events.clone();
        tokio::spawn(async move {
            let sdp = Header::ContentType("application/sdp".into());
            let body = offer.to_string().into_bytes();
            if let Ok(Some(response)) = dialog.reinvite(Some(vec![sdp]), Some(body)).await {
                handover.status = Some(response.status_code.code());
                handover.answer = response.body().clone();
            }
            events.send(CallEvent::Handover(Box::new(handover))).ok();
        });
        Ok(())
    }

    /// The target answered the re-INVITE (or did not): complete the handover, or answer
    /// the REFER with the failure and leave both calls alone.
    pub(super) fn on_handover(
        &mut self,
        h: Handover,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        let answer = h
            .status
            .filter(|code| (200..300).contains(code))
            .and_then(|_| SessionDescription::parse_bytes(&h.answer).ok())
            .and_then(|sdp| {
                Some((
                    sdp.audio_endpoint()?,
                    sdp.leg_codecs()?,
                    sdp.receives_audio(),
                    // An SRTP target must answer our SRTP re-INVITE with its key.
                    sdp.srtp_answering(&h.offer.0).ok()?,
                ))
            });
        let Some((remote, codecs, receiving, srtp)) = answer else {
            tracing::info!(call = %h.call, status = ?h.status, "attended transfer failed: re-INVITE refused");
            let status = h.status.filter(|c| *c >= 400).unwrap_or(500);
            self.refer_failed(&h.call, &h.seat, StatusCode::from(status), legs);
            return;
        };
        let now = self.clock.now();
        if let Err(e) = (self.router).hand_over(now, &h.call, &h.seat, &h.consult, &h.target) {
            // A race: a party left during the re-INVITE. The doctor's media already goes
            // to the caller's relay, so its consultation leg is ended rather than left mute.
            tracing::warn!(call = %h.call, error = %e, "attended transfer: handover refused");
            self.refer_failed(
                &h.call,
                &h.seat,
                StatusCode::CallTransactionDoesNotExist,
                legs,
            );
            self.hang_up_leg(&h.target_leg, legs.get(&h.consult));
            return;
        }
        let detail = format!("attended to {}", h.target);
        self.seat_log(
            now,
            &h.seat,
            EventKind::Transfer,
            Some(&h.call),
            Some(&detail),
        );
        // The switchboard moved the doctor: its leg follows, before the outputs (bridge X,
        // end Y) are carried out.
        let leg = legs.get_mut(&h.consult).and_then(|y| {
            let i = y.seats.iter().position(|s| s.sip == h.target_leg)?;
            Some(y.seats.remove(i))
        });
        let (Some(mut leg), Some(x)) = (leg, legs.get_mut(&h.call)) else {
            return;
        };
        leg.media = h.side;
        x.relay.set_remote(h.side, remote);
        x.relay.set_codecs(h.side, codecs);
        x.relay.set_receiving(h.side, receiving);
        x.relay.set_srtp(h.side, srtp);
        let peer = (remote, codecs);
        (self.router).sdp_handed_over(&h.call, h.side.idx(), peer, h.offer, srtp);
        by_leg.insert(leg.sip.clone(), h.call.clone());
        x.seats.push(leg);
    }

    /// Answers `seat`'s pending REFER on `call` with `status`; its leg stays up.
    fn refer_failed(&self, call: &str, seat: &str, status: StatusCode, legs: &mut LegMap) {
        let refer = legs
            .get_mut(call)
            .and_then(|x| x.seats.iter_mut().find(|s| s.seat == seat))
            .and_then(|s| s.referred.take());
        if let Some(refer) = refer {
            tokio::spawn(async move { refer.reply(status).await.ok() });
        }
    }
}
