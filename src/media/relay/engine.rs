//! Relay threads: each owns many calls' sockets and does their IO in batches.
//!
//! A thread waits in one level-triggered `epoll_wait` for every RTP/RTCP socket of its
//! calls, its wake-up `eventfd` and the nearest timer of its calls (one heap per thread,
//! not a timer per call). A ready socket is read with one `recvmmsg` into the thread's
//! pooled buffers (at most [`BATCH`] datagrams per turn: a flooded socket is read again on
//! the next turn after the others, level-triggered epoll reports it again), and each
//! datagram goes through its call's [`RelayTask`] in place. A quiet socket costs nothing
//! (no draining read until `EAGAIN` as with edge-triggered readiness).
//!
//! Commands (on a futures channel) and WebRTC peers' packets (on tokio's) arrive on
//! channels: each call's receivers are polled with a waker that queues the call on its
//! thread, so the [`MediaRelay`] handle's API is unchanged and a call needs no task of its
//! own. A peer's packet wakes the thread at once (its `eventfd`); a new call, a leg's new
//! sockets and another command only arm the thread's `timerfd` [`SOON`] ahead, so the
//! set-up and tear-down of the calls of those milliseconds cost the thread one wake-up, not
//! one per command (at 1,000 calls/s, ~5 a call before). A packet that comes to new sockets
//! before the thread watches them waits in the socket's buffer (at most [`SOON`], once per
//! leg) and is read after the commands sent meanwhile: a plain RTCP report sent before SRTP
//! keys are agreed is then told from a forged SRTCP one (`task`). The handle dropped closes
//! the command channel: the thread drops the call and its sockets.
//!
//! A call whose processing panics is dropped alone (its sockets closed, logged): the thread
//! and its other calls go on. A socket error is that socket's (logged, the socket read
//! again next time), never the thread's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::StreamExt;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::task::{PeerLink, RelayTask};
use super::*;
use crate::media::ports::ParkedPair;

/// Datagrams read per `recvmmsg`: the thread's pool of receive buffers.
pub(super) const BATCH: usize = 32;
/// Epoll events taken per wait.
const EVENTS: usize = 1024;
/// WebRTC packets taken from one peer per turn (then the call is queued again).
const PEER_BURST: usize = 64;
/// The token of the thread's `eventfd`.
const WAKE_TOKEN: u64 = u64::MAX;
/// The token of the thread's `timerfd`.
const TIMER_TOKEN: u64 = u64::MAX - 1;
/// How long a new call or a command may wait for its thread: the greeting starts, a bridge
/// or a codec change takes effect, the record of a finished call is stored that much
/// later at most. Packets are not delayed by it (a watched socket or a peer wakes the
/// thread), but for a new leg's first ones, until its sockets are watched.
pub(super) const SOON: Duration = Duration::from_millis(10);
/// Relay threads when not configured: one per core.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of relay threads (`[media] relay_threads`; 0: one per core). Takes
/// effect only before the first call is relayed.
pub fn set_relay_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// The relay threads of the process.
pub(super) struct Engine {
    threads: Vec<Arc<Shared>>,
    next: AtomicUsize,
}

impl Engine {
    /// The process's relay threads, started on first use.
    pub(super) fn global() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            let n = match THREADS.load(Ordering::Relaxed) {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            Engine::start(n).unwrap_or_else(|e| panic!("cannot start the RTP relay threads: {e}"))
        })
    }

    fn start(n: usize) -> io::Result<Engine> {
        let threads = (0..n.max(1))
            .map(|i| {
                let shared = Arc::new(Shared::new()?);
                let mine = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("rtp-relay-{i}"))
                    .spawn(move || RelayThread::new(mine).run())?;
                Ok(shared)
            })
            .collect::<io::Result<_>>()?;
        Ok(Engine {
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands a call to a thread (round robin): from now on it relays `task`'s sockets and
    /// obeys `commands` until the channel closes or says [`Command::Finish`].
    pub(super) fn add(&self, task: RelayTask, commands: Commands) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        self.threads[i].post(Urgency::Soon, |inbox| {
            inbox.added.push((task, commands));
        });
    }
}

/// What a relay thread shares with the handles of its calls.
pub(super) struct Shared {
    epoll: Epoll,
    eventfd: EventFd,
    timer: TimerFd,
    inbox: Mutex<Inbox>,
}

#[derive(Default)]
pub(super) struct Inbox {
    added: Vec<(RelayTask, Commands)>,
    /// Calls whose channels have something (by slot).
    pub(super) woken: Vec<usize>,
    /// The `eventfd` written since the thread last took the inbox.
    written: bool,
    /// The `timerfd` armed since the thread last took the inbox.
    pub(super) armed: bool,
}

/// How soon the thread must see what is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Urgency {
    /// A packet: now.
    Now,
    /// A call or a command: within [`SOON`].
    Soon,
}

impl Shared {
    pub(super) fn new() -> io::Result<Shared> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        epoll.add(&eventfd, EpollEvent::new(EpollFlags::EPOLLIN, WAKE_TOKEN))?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )?;
        epoll.add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER_TOKEN))?;
        Ok(Shared {
            epoll,
            eventfd,
            timer,
            inbox: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts something in the inbox and makes sure the thread takes it in time: an urgent
    /// post writes the `eventfd` unless someone did since the thread last took the inbox,
    /// a post that can wait arms the `timerfd` [`SOON`] ahead unless either was done. The
    /// thread reads both before it takes the inbox, so what is posted meanwhile costs a
    /// spurious turn at worst, and is never left behind. Under load, the posts between two
    /// turns cost one syscall and one wake-up, not one each.
    pub(super) fn post(&self, urgency: Urgency, put: impl FnOnce(&mut Inbox)) {
        let (write, arm) = {
            let mut inbox = self.lock();
            put(&mut inbox);
            let write = urgency == Urgency::Now && !inbox.written;
            let arm = urgency == Urgency::Soon && !inbox.written && !inbox.armed;
            inbox.written |= write;
            inbox.armed |= arm;
            (write, arm)
        };
        if write {
            // A full counter (never, in practice) means a wake-up is pending anyway.
            self.eventfd.write(1).ok();
        }
        if arm {
            let soon = Expiration::OneShot(TimeSpec::from_duration(SOON));
            if let Err(e) = self.timer.set(soon, TimerSetTimeFlags::empty()) {
                warn!(error = %e, "RTP relay: timerfd not armed, waking the thread now");
                self.eventfd.write(1).ok();
            }
        }
    }

    /// Reads and resets the `eventfd`: the wake-ups asked since the last read. The thread
    /// does this before [`Shared::take`] (see [`Shared::post`]).
    pub(super) fn drain(&self) -> u64 {
        self.eventfd.read().unwrap_or(0)
    }

    /// Reads the fired `timerfd` (nothing if it has not). Before [`Shared::take`], as
    /// [`Shared::drain`].
    fn disarm(&self) {
        self.timer.wait().ok();
    }

    /// Empties the inbox.
    pub(super) fn take(&self) -> Inbox {
        std::mem::take(&mut *self.lock())
    }

    /// Watches `fd` (level-triggered) under `token`.
    fn watch(&self, fd: impl AsFd, token: u64) -> io::Result<()> {
        Ok(self
            .epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))?)
    }
}

/// Wakes a call's thread when one of the call's channels has something: at once for a
/// WebRTC peer's packets, within [`SOON`] for a command.
struct CallWaker {
    shared: Arc<Shared>,
    slot: usize,
    urgency: Urgency,
}

impl Wake for CallWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared
            .post(self.urgency, |inbox| inbox.woken.push(self.slot));
    }
}

/// A call on a relay thread.
struct Call {
    task: RelayTask,
    commands: Commands,
    /// Polls the commands.
    waker: Waker,
    /// Polls the WebRTC peers.
    urgent: Waker,
    /// Told apart from an earlier call in the same slot (epoll tokens, timers).
    generation: u32,
    /// The earliest of its deadlines in the thread's timer heap.
    armed: Option<Instant>,
}

/// Epoll token of a call's socket: slot, generation, leg and RTP/RTCP.
pub(super) fn token(slot: usize, generation: u32, leg: Leg, rtcp: bool) -> u64 {
    ((slot as u64) << 32)
        | (u64::from(generation & 0xff_ffff) << 8)
        | ((leg.idx() as u64) << 1)
        | u64::from(rtcp)
}

pub(super) fn untoken(token: u64) -> (usize, u32, Leg, bool) {
    let leg = Leg::ALL[((token >> 1) & 3) as usize % 3];
    (
        (token >> 32) as usize,
        ((token >> 8) & 0xff_ffff) as u32,
        leg,
        token & 1 == 1,
    )
}

/// Receive buffers and `recvmmsg` headers, reused for every batch.
struct RecvPool {
    bufs: Box<[[u8; RECV_BUF]; BATCH]>,
    headers: MultiHeaders<SockaddrStorage>,
}

/// What one `recvmmsg` got: each datagram's length and source, in the pool's buffers.
type Batch = [(usize, Option<SocketAddr>); BATCH];

impl RecvPool {
    fn new() -> RecvPool {
        RecvPool {
            bufs: Box::new([[0; RECV_BUF]; BATCH]),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// One `recvmmsg` on `fd`: how many datagrams landed in the pool.
    fn recv(&mut self, fd: RawFd, got: &mut Batch) -> io::Result<usize> {
        let mut slices = self.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
        let received = recvmmsg(
            fd,
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        let mut n = 0;
        for (slot, msg) in got.iter_mut().zip(received) {
            *slot = (
                msg.bytes,
                msg.address.and_then(crate::sockaddr::socket_addr),
            );
            n += 1;
        }
        Ok(n)
    }
}

/// One relay thread's state.
struct RelayThread {
    shared: Arc<Shared>,
    /// Boxed: a call's state is ~1.5 KiB, and a vector of them inline would hold up to as
    /// much again in spare capacity per call.
    calls: Vec<Option<Box<Call>>>,
    free: Vec<usize>,
    generation: u32,
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    pool: RecvPool,
}

impl RelayThread {
    fn new(shared: Arc<Shared>) -> RelayThread {
        RelayThread {
            shared,
            calls: Vec::new(),
            free: Vec::new(),
            generation: 0,
            timers: BinaryHeap::new(),
            pool: RecvPool::new(),
        }
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); EVENTS];
        loop {
            let collect_in = crate::heap::collect_before_waiting();
            let n = match self
                .shared
                .epoll
                .wait(&mut events, self.timeout(collect_in))
            {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    error!(error = %e, "RTP relay thread: epoll_wait failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            // Commands first: a command sent before a packet (codecs, then the peer's
            // first packet) is obeyed before the packet is relayed.
            for ev in &events[..n] {
                match ev.data() {
                    WAKE_TOKEN => _ = self.shared.drain(),
                    TIMER_TOKEN => self.shared.disarm(),
                    _ => {}
                }
            }
            self.take_inbox();
            for ev in &events[..n] {
                if ev.data() < TIMER_TOKEN {
                    self.readable(ev.data());
                }
            }
            self.fire_timers();
        }
    }

    /// Until the nearest timer or `collect_in` (the thread's pending heap collection), in
    /// whole milliseconds rounded up; none without either.
    fn timeout(&self, collect_in: Option<Duration>) -> EpollTimeout {
        let timer = self
            .timers
            .peek()
            .map(|Reverse((at, ..))| at.saturating_duration_since(Instant::now()));
        let Some(left) = timer.into_iter().chain(collect_in).min() else {
            return EpollTimeout::NONE;
        };
        let ms = left.as_micros().div_ceil(1000).min(60_000) as u16;
        EpollTimeout::from(ms)
    }

    fn take_inbox(&mut self) {
        let Inbox { added, woken, .. } = self.shared.take();
        for (task, commands) in added {
            let slot = self.insert(task, commands);
            self.poll_call(slot);
        }
        for slot in woken {
            self.poll_call(slot);
        }
    }

    fn insert(&mut self, task: RelayTask, commands: Commands) -> usize {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.calls.push(None);
            self.calls.len() - 1
        });
        self.generation = self.generation.wrapping_add(1) & 0xff_ffff;
        let waker = |urgency| {
            Waker::from(Arc::new(CallWaker {
                shared: Arc::clone(&self.shared),
                slot,
                urgency,
            }))
        };
        self.calls[slot] = Some(Box::new(Call {
            task,
            commands,
            waker: waker(Urgency::Soon),
            urgent: waker(Urgency::Now),
            generation: self.generation,
            armed: None,
        }));
        slot
    }

    /// Runs `f` on the call in `slot`, then sends what it produced and re-arms its timer; a
    /// panic drops the call alone. Nothing if the slot is empty.
    fn with_call(
        &mut self,
        slot: usize,
        f: impl FnOnce(&mut Call, &mut RecvPool, &Shared, usize) -> Step,
    ) {
        let Some(Some(call)) = self.calls.get_mut(slot) else {
            return;
        };
        let pool = &mut self.pool;
        let shared = &*self.shared;
        let step = catch_unwind(AssertUnwindSafe(|| {
            let step = f(call, pool, shared, slot);
            call.task.flush();
            step
        }));
        let step = step.unwrap_or_else(|_| {
            error!(
                slot,
                "RTP relay: a call's media panicked; its media is dropped"
            );
            Step::Remove
        });
        match step {
            Step::Remove => self.remove(slot),
            Step::Keep => {
                let Some(Some(call)) = self.calls.get_mut(slot) else {
                    return;
                };
                // Only an earlier deadline is pushed: a later one is found when the armed
                // one fires (early, harmlessly), so the heap holds about one entry a call.
                let Some(at) = call.task.deadline() else {
                    return;
                };
                if call.armed.is_none_or(|armed| at < armed) {
                    call.armed = Some(at);
                    self.timers.push(Reverse((at, slot, call.generation)));
                }
            }
        }
    }

    fn remove(&mut self, slot: usize) {
        let Some(mut call) = self.calls.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let pairs = self.unwatch(&mut call.task);
        let ports = call.task.ports.take();
        // Out of the kernel path (its entries removed as the call drops) before the
        // sockets can serve another call.
        drop(call);
        if let Some(ports) = ports {
            let now = Instant::now();
            for pair in pairs {
                // Refused (the pool full, or the lease given back already): closed.
                _ = ports.park(pair, now);
            }
        }
        self.free.push(slot);
    }

    /// Takes the call's sockets off the epoll set, to be parked. A socket that cannot be
    /// is closed with its pair (closing takes it off the set).
    fn unwatch(&self, task: &mut RelayTask) -> Vec<ParkedPair> {
        let mut pairs = Vec::new();
        for leg in Leg::ALL {
            let i = leg.idx();
            let (Some(rtp), Some(rtcp), Some(local)) =
                (task.rtp[i].take(), task.rtcp[i].take(), task.local[i])
            else {
                continue;
            };
            let off = |s: &UdpSocket| self.shared.epoll.delete(s).is_ok();
            if off(&rtp) & off(&rtcp) {
                pairs.push(ParkedPair {
                    ip: local.ip(),
                    port: local.port(),
                    rtp,
                    rtcp,
                });
            }
        }
        pairs
    }

    /// A socket of a call is readable: one batch through the call.
    fn readable(&mut self, token: u64) {
        let (slot, generation, leg, rtcp) = untoken(token);
        self.with_call(slot, |call, pool, _, _| {
            if call.generation != generation {
                return Step::Keep;
            }
            let sockets = if rtcp {
                &call.task.rtcp
            } else {
                &call.task.rtp
            };
            let Some(fd) = sockets[leg.idx()].as_ref().map(AsRawFd::as_raw_fd) else {
                return Step::Keep;
            };
            let mut got = [(0, None); BATCH];
            match pool.recv(fd, &mut got) {
                Ok(n) => {
                    for (i, &(len, src)) in got[..n].iter().enumerate() {
                        let received = src
                            .map(|src| (len, src))
                            .ok_or_else(|| io::Error::other("datagram without an IP source"));
                        call.task
                            .on_datagram(leg, rtcp, received, &mut pool.bufs[i]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // E.g. ECONNREFUSED from an ICMP error for an earlier send: the socket's,
                // reported once and cleared by the kernel.
                Err(e) => call.task.on_datagram(leg, rtcp, Err(e), &mut pool.bufs[0]),
            }
            Step::Keep
        });
    }

    /// Takes the call's commands and its WebRTC peers' packets.
    fn poll_call(&mut self, slot: usize) {
        let mut finished = None;
        self.with_call(slot, |call, pool, shared, slot| {
            let mut cx = Context::from_waker(&call.waker);
            loop {
                match call.commands.poll_next_unpin(&mut cx) {
                    Poll::Ready(Some(Command::Finish(on_finish))) => {
                        finished = Some((on_finish, call.task.finish()));
                        return Step::Remove;
                    }
                    Poll::Ready(Some(Command::Open(leg, sockets))) => {
                        let generation = call.generation;
                        for (socket, rtcp) in [(&sockets.rtp, false), (&sockets.rtcp, true)] {
                            let t = token(slot, generation, leg, rtcp);
                            if let Err(e) = shared.watch(socket, t) {
                                error!(?leg, error = %e, "RTP socket not watched: the leg carries no media");
                            }
                        }
                        call.task.ports = Some(Arc::clone(&sockets.pool));
                        call.task.local[leg.idx()] = Some(sockets.local);
                        call.task.rtp[leg.idx()] = Some(sockets.rtp);
                        call.task.rtcp[leg.idx()] = Some(sockets.rtcp);
                    }
                    Poll::Ready(Some(command)) => call.task.command(command),
                    // The handle is gone.
                    Poll::Ready(None) => return Step::Remove,
                    Poll::Pending => break,
                }
            }
            let mut cx = Context::from_waker(&call.urgent);
            let mut more = false;
            for leg in Leg::ALL {
                for k in 0..=PEER_BURST {
                    if k == PEER_BURST {
                        more = true;
                        break;
                    }
                    let Some(peer) = call.task.peers[leg.idx()].as_mut().filter(|p| !p.ended) else {
                        break;
                    };
                    match poll_peer(peer, &mut cx, &mut pool.bufs[0]) {
                        Poll::Ready(Some(len)) => call.task.on_peer_packet(leg, &mut pool.bufs[0][..len]),
                        Poll::Ready(None) => info!(?leg, "WebRTC peer channel ended"),
                        Poll::Pending => break,
                    }
                }
            }
            if more {
                // A peer had more than a burst: come back after the others.
                call.urgent.wake_by_ref();
            }
            Step::Keep
        });
        // Reported once the call's sockets are closed: its ports go back to the pool then.
        // The owner's code runs here: its panic must not take the thread's other calls.
        if let Some((on_finish, report)) = finished
            && catch_unwind(AssertUnwindSafe(|| on_finish.report(report))).is_err()
        {
            error!(slot, "RTP relay: a call's finish report panicked");
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, slot, generation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let due = matches!(self.calls.get(slot), Some(Some(c)) if c.generation == generation && c.armed == Some(at));
            if due {
                self.with_call(slot, |call, _, _, _| {
                    // Fired: armed again after, even for the same deadline.
                    call.armed = None;
                    call.task.on_timeout();
                    Step::Keep
                });
            }
        }
    }
}

/// Whether the thread keeps a call after handling it.
enum Step {
    Keep,
    Remove,
}

/// The next packet of a WebRTC peer, copied into `buf`: its length (0 if it did not fit),
/// `None` when the channel ended.
fn poll_peer(peer: &mut PeerLink, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Option<usize>> {
    peer.io.from_peer.poll_recv(cx).map(|packet| {
        peer.ended = packet.is_none();
        packet.map(|p| match buf.get_mut(..p.len()) {
            Some(room) => {
                room.copy_from_slice(&p);
                p.len()
            }
            None => 0,
        })
    })
}
