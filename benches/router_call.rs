//! The Router's cost per event: trunk calls from admission to the caller's BYE on virtual
//! time (admitted → the ACD offers a seat → 180 → 200 → BYE, every output drained, due
//! timers run), with 100 registered ARM seats (10 s wrap-up) and a new call every 200 ms.
//! Four inputs per call; criterion's throughput is in calls, divide by four for events.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sas_router::call::router::{Router, RouterInput, RouterOutput};
use sas_router::call::tests_support::{T0, board_with};
use sas_router::call::{CallInput, CallOutput};
use sas_router::pii::CallerNumber;
use sas_router::routing::plan::{PlanSet, load_texts};
use sas_router::time::Now;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

const SEATS: usize = 100;
/// Virtual time between calls: 100 seats with 10 s wrap-up take 10 calls/s.
const STEP_MS: u64 = 200;

const PLAN: &str = r#"
[queues.arm]
role = "arm"
[external]
renfort = "0102030405"

[entries.samu]
numbers = ["15"]
line = "samu"
start = "file"

[entries.samu.steps.file]
queue = "arm"
max_wait_s = 30
overflow = "renfort"

[entries.samu.steps.renfort]
forward = "renfort"
"#;

struct Centre {
    router: Router,
    plans: Arc<PlanSet>,
    now: Now,
    next: u64,
}

impl Centre {
    fn new() -> Self {
        let ids: Vec<String> = (0..SEATS).map(|i| format!("arm{i:03}")).collect();
        let seats: Vec<(&str, &str)> = ids.iter().map(|s| (s.as_str(), "arm")).collect();
        let now = Now::at(T0);
        let mut router = Router::new(board_with(&seats), now);
        for seat in &ids {
            let contact = format!("sip:{seat}@127.0.0.1:5070");
            // Ten years: no registration expires during the bench.
            let contacts = vec![(contact, 10 * 365 * 86_400_000)];
            let seat = seat.clone();
            router.handle(now, RouterInput::Registration { seat, contacts });
        }
        while router.poll_output().is_some() {}
        let plans = load_texts(vec![(PathBuf::from("samu.toml"), PLAN.into())], &[], &[])
            .expect("bench plan");
        Self {
            router,
            plans: Arc::new(plans),
            now,
            next: 0,
        }
    }

    /// One call, admission to BYE; returns the seat that took it.
    fn call(&mut self) -> Option<String> {
        self.next += 1;
        self.now = self.now.plus(STEP_MS);
        let call = format!("20261203T083000.000Z-{:06}", self.next);
        if let Some(due) = self.router.poll_timeout()
            && due <= self.now.mono
        {
            self.router.handle_timeout(self.now);
        }
        let arrived = CallInput::Arrived {
            call: call.as_str().into(),
            sip_call_id: format!("{:x}@trunk.example", self.next),
            line: "samu".into(),
            called: "15".into(),
            caller: CallerNumber::new("0612345678"),
        };
        let admitted = RouterInput::Admitted {
            arrived,
            plans: Arc::clone(&self.plans),
            entry: "samu".into(),
            dialled: None,
            overloaded: false,
        };
        self.router.handle(self.now, admitted);
        let mut seat = None;
        while let Some(out) = self.router.poll_output() {
            if let RouterOutput::Call(CallOutput::RingSeat { seat: s, .. }) = out {
                seat = Some(s);
            }
        }
        let seat = seat?;
        let c = || call.as_str().into();
        for input in [
            CallInput::SeatRinging {
                call: c(),
                seat: seat.clone(),
            },
            CallInput::SeatAnswered {
                call: c(),
                seat: seat.clone(),
            },
            CallInput::CallerGone { call: c() },
        ] {
            self.router.handle(self.now, RouterInput::Call(input));
            while let Some(out) = self.router.poll_output() {
                black_box(out);
            }
        }
        Some(seat.to_string())
    }
}

fn bench(c: &mut Criterion) {
    let mut centre = Centre::new();
    assert!(centre.call().is_some(), "a seat takes the first call");
    let mut group = c.benchmark_group("router");
    group.throughput(Throughput::Elements(1));
    group.bench_function("trunk_call_invite_to_bye_100_seats", |b| {
        b.iter(|| black_box(centre.call()))
    });
    group.finish();
    assert!(centre.call().is_some(), "seats still take calls at the end");
}

criterion_group!(benches, bench);
criterion_main!(benches);
