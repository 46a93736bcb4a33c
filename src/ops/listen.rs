//! Listening sockets, bound or inherited the same way for every service.
//!
//! A service says which sockets its configuration wants, as [`Spec`]s: a name (`dns`, `http`,
//! `https`: also the name a socket is handed over under), a transport, the address as
//! configured, and an index for the several UDP sockets of one address (one per worker thread,
//! joined with `SO_REUSEPORT`). Sockets of one name and address form a group that shares one
//! port: with port 0 the kernel picks it once, for DNS over UDP and TCP alike.
//!
//! [`Listeners::open`] provides every wanted socket, all or nothing:
//!
//! 1. [`check`] refuses, before anything is bound, addresses listed twice or overlapping
//!    (`onebox check` calls it too);
//! 2. a socket is taken from [`Inherited`] when one there fits: passed by systemd (socket
//!    activation: `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`) or by the onebox that started
//!    this one for an upgrade (`ops::upgrade`). It fits when its transport and bound address
//!    match (for port 0, its address and name); a name that is one of the wanted names must
//!    be the spec's, any other (systemd's default, the unit name) fits any spec. When a
//!    group's UDP sockets were passed but fewer than its workers, and more cannot be bound (a
//!    socket unit holds one socket per address, bound by root), the extra workers share the
//!    passed ones;
//! 3. otherwise it is bound here: IPv6 addresses bind IPv6 only (so `[::]` and `0.0.0.0` can be
//!    listed side by side), TCP listeners reuse the address (restart after TIME_WAIT), UDP
//!    sockets reuse the port so that workers can join; a plain probe bind first makes sure the
//!    port is not already some other process's.
//!
//! A reload calls [`Listeners::update`]: what is new is bound (all or nothing), what is gone is
//! closed (its [`Bound::stop`] token is cancelled and the descriptors dropped), the rest stays
//! as it is — the same kernel sockets, so no query or connection notices.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

/// The first descriptor passed by socket activation (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// How many times a port-0 group looks for a port free for all its sockets.
const PORT_ATTEMPTS: usize = 32;

/// The transport of a listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A datagram socket.
    Udp,
    /// A listening stream socket.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        })
    }
}

/// One socket a service wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    /// What the socket is for (`dns`, `http`, `https`), and the name it is handed over under.
    pub name: &'static str,
    /// The configuration key that lists the address, for messages.
    pub key: &'static str,
    /// The transport.
    pub transport: Transport,
    /// The address as configured; port 0 picks a free port once for the whole group.
    pub addr: SocketAddr,
    /// Which of several sockets of one transport on one address (`SO_REUSEPORT` workers).
    pub index: usize,
}

impl Spec {
    fn group(&self) -> (&'static str, SocketAddr) {
        (self.name, self.addr)
    }
}

/// Why sockets could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// An address could not be bound.
    #[error("key {key}: cannot bind {addr} ({transport}): {error}{hint}", hint = bind_hint(.error))]
    Bind {
        /// The configuration key.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The transport.
        transport: Transport,
        /// Why (in the message, not a separate cause: printed once).
        error: io::Error,
    },
    /// Two configured addresses cannot both be bound.
    #[error(
        "key {key}: {addr} ({transport}) overlaps {other} of key {other_key}; list each address once"
    )]
    Conflict {
        /// The key of the second address.
        key: &'static str,
        /// The second address.
        addr: SocketAddr,
        /// The transport both use.
        transport: Transport,
        /// The key of the first address.
        other_key: &'static str,
        /// The first address.
        other: SocketAddr,
    },
    /// Sockets passed by the service manager (or the previous onebox) are unusable.
    #[error("inherited socket (descriptor {fd}): {message}")]
    Inherited {
        /// The descriptor.
        fd: RawFd,
        /// What is wrong.
        message: String,
    },
}

fn bind_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need root, CAP_NET_BIND_SERVICE or sockets passed by systemd"
        }
        io::ErrorKind::AddrInUse => "; another process (or another onebox) serves it",
        io::ErrorKind::AddrNotAvailable => "; no interface of this machine has that address",
        _ => "",
    }
}

/// Checks that `wanted` can all be bound at once: no address listed twice, none overlapping
/// another of the same transport (a wildcard covers every address of its family).
pub fn check(wanted: &[Spec]) -> Result<(), ListenError> {
    let mut seen: Vec<&Spec> = Vec::new();
    for spec in wanted.iter().filter(|s| s.index == 0) {
        let other = seen.iter().find(|other| {
            other.transport == spec.transport
                && (*other == &spec
                    || spec.addr.port() != 0
                        && other.addr.port() == spec.addr.port()
                        && overlap(other.addr.ip(), spec.addr.ip()))
        });
        if let Some(other) = other {
            return Err(ListenError::Conflict {
                key: spec.key,
                addr: spec.addr,
                transport: spec.transport,
                other_key: other.key,
                other: other.addr,
            });
        }
        seen.push(spec);
    }
    Ok(())
}

fn overlap(a: IpAddr, b: IpAddr) -> bool {
    a == b || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
}

/// A socket in service.
#[derive(Debug, Clone)]
pub struct Bound {
    spec: Spec,
    local: SocketAddr,
    socket: Arc<Socket>,
    stop: CancellationToken,
    inherited: bool,
}

impl Bound {
    /// What it was wanted as.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The address it is bound to (the port picked, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Cancelled when a reload removes the socket: stop serving it.
    pub fn stop(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Whether it came from the service manager or the previous onebox.
    pub fn inherited(&self) -> bool {
        self.inherited
    }

    /// A descriptor of the socket as a (blocking) UDP socket, for a serving thread.
    pub fn udp(&self) -> io::Result<UdpSocket> {
        let socket = self.socket.try_clone()?;
        socket.set_nonblocking(false)?;
        Ok(socket.into())
    }

    /// A descriptor of the socket as a non-blocking TCP listener, for an accept loop.
    pub fn tcp(&self) -> io::Result<TcpListener> {
        let socket = self.socket.try_clone()?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    }

    /// The descriptor held for hand-over (an upgrade passes it on).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for bound in &self.bound {
            bound.stop.cancel();
        }
    }
}

/// What a reload changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Newly bound: to be served.
    pub added: Vec<Bound>,
    /// No longer wanted: their stop tokens are cancelled and this set's descriptors closed.
    pub removed: Vec<Bound>,
}

/// Every socket in service, in the order wanted.
#[derive(Debug)]
pub struct Listeners {
    bound: Vec<Bound>,
    shutdown: CancellationToken,
}

impl Listeners {
    /// Provides every socket of `wanted`, from `inherited` or bound here; all or nothing.
    /// Each socket's stop token is a child of `closed`, and is cancelled when the socket is
    /// removed, closed or this set dropped.
    pub fn open(
        wanted: &[Spec],
        inherited: &mut Inherited,
        closed: &CancellationToken,
    ) -> Result<Self, ListenError> {
        check(wanted)?;
        let mut listeners = Self {
            bound: Vec::new(),
            shutdown: closed.clone(),
        };
        listeners.bound = listeners.provide(wanted, inherited)?;
        Ok(listeners)
    }

    /// Moves to `wanted`: binds what is new (all or nothing: on error nothing changes), closes
    /// what is gone, keeps the rest untouched.
    pub fn update(&mut self, wanted: &[Spec]) -> Result<Changes, ListenError> {
        check(wanted)?;
        let new: Vec<Spec> = wanted
            .iter()
            .filter(|spec| !self.bound.iter().any(|b| &b.spec == *spec))
            .cloned()
            .collect();
        let added = self.provide(&new, &mut Inherited::none())?;
        let (kept, removed): (Vec<Bound>, Vec<Bound>) = std::mem::take(&mut self.bound)
            .into_iter()
            .partition(|b| wanted.contains(&b.spec));
        for bound in &removed {
            bound.stop.cancel();
        }
        self.bound = kept;
        self.bound.extend(added.iter().cloned());
        self.bound.sort_by_key(|b| {
            wanted
                .iter()
                .position(|s| s == &b.spec)
                .unwrap_or(usize::MAX)
        });
        Ok(Changes { added, removed })
    }

    /// The sockets in service.
    pub fn iter(&self) -> impl Iterator<Item = &Bound> {
        self.bound.iter()
    }

    /// Binds (or takes from `inherited`) every spec of `wanted`, group by group.
    fn provide(
        &self,
        wanted: &[Spec],
        inherited: &mut Inherited,
    ) -> Result<Vec<Bound>, ListenError> {
        let mut provided = Vec::new();
        let mut done = HashSet::new();
        for spec in wanted {
            if !done.insert(spec.group()) {
                continue;
            }
            let group: Vec<&Spec> = wanted
                .iter()
                .filter(|s| s.group() == spec.group())
                .collect();
            // A port this group already has (a kept socket, on a reload).
            let port = self
                .bound
                .iter()
                .find(|b| b.spec.group() == spec.group())
                .map(|b| b.local.port());
            provided.extend(self.provide_group(&group, port, inherited)?);
        }
        Ok(provided)
    }

    fn provide_group(
        &self,
        group: &[&Spec],
        mut port: Option<u16>,
        inherited: &mut Inherited,
    ) -> Result<Vec<Bound>, ListenError> {
        let mut taken = Vec::new();
        let mut rest = Vec::new();
        for spec in group {
            match inherited.take(spec, port) {
                Some((socket, local)) => {
                    port = Some(local.port());
                    taken.push(self.bound_from(spec, Arc::new(socket), local, true));
                }
                None => rest.push(*spec),
            }
        }
        if rest.is_empty() {
            return Ok(taken);
        }
        // The group's sockets already in service (on a reload) or passed: the rest join them.
        let peers: Vec<Bound> = self
            .bound
            .iter()
            .filter(|b| b.spec.group() == rest[0].group())
            .chain(&taken)
            .cloned()
            .collect();
        if let Some(port) = peers.first().map(|b| b.local.port()) {
            let new = self.join_group(port, &peers, &rest)?;
            taken.extend(new);
            return Ok(taken);
        }
        let first = rest[0];
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = match port {
                Some(port) => port,
                None => probe(first.addr, &rest).map_err(|source| bind_error(first, source))?,
            };
            match rest
                .iter()
                .map(|spec| self.bind(spec, port))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(bound) => {
                    taken.extend(bound);
                    return Ok(taken);
                }
                // A port picked for this group was taken meanwhile: pick another.
                Err(ListenError::Bind { error, .. })
                    if error.kind() == io::ErrorKind::AddrInUse
                        && first.addr.port() == 0
                        && taken.is_empty()
                        && self.bound.iter().all(|b| b.spec.group() != first.group())
                        && attempts < PORT_ATTEMPTS => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Completes a group that has sockets already (`peers`: passed, or in service): the rest
    /// are bound on the same port; UDP workers that cannot be (the peers were bound by
    /// systemd as root, or before the switch to `user`) share the peers' UDP sockets, in turn.
    fn join_group(
        &self,
        port: u16,
        peers: &[Bound],
        rest: &[&Spec],
    ) -> Result<Vec<Bound>, ListenError> {
        let mut joined = Vec::new();
        let passed_udp: Vec<&Bound> = peers
            .iter()
            .filter(|b| b.spec.transport == Transport::Udp)
            .collect();
        let mut shared = 0;
        for spec in rest {
            match self.bind(spec, port) {
                Ok(bound) => joined.push(bound),
                Err(ListenError::Bind { error, .. })
                    if spec.transport == Transport::Udp && !passed_udp.is_empty() =>
                {
                    let with = &passed_udp[shared % passed_udp.len()];
                    if shared == 0 {
                        tracing::info!(
                            addr = %with.local,
                            workers = passed_udp.len() + rest.len(),
                            sockets = passed_udp.len(),
                            %error,
                            "dns.udp_workers: more workers than UDP sockets, and no more can be bound here; the workers share them"
                        );
                    }
                    shared += 1;
                    joined.push(self.bound_from(
                        spec,
                        with.socket.clone(),
                        with.local,
                        with.inherited,
                    ));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(joined)
    }

    fn bind(&self, spec: &Spec, port: u16) -> Result<Bound, ListenError> {
        let addr = SocketAddr::new(spec.addr.ip(), port);
        let socket = bind(addr, spec.transport, true).map_err(|source| bind_error(spec, source))?;
        let local = local_addr(&socket).map_err(|source| bind_error(spec, source))?;
        Ok(self.bound_from(spec, Arc::new(socket), local, false))
    }

    fn bound_from(
        &self,
        spec: &Spec,
        socket: Arc<Socket>,
        local: SocketAddr,
        inherited: bool,
    ) -> Bound {
        Bound {
            spec: spec.clone(),
            local,
            socket,
            stop: self.shutdown.child_token(),
            inherited,
        }
    }

    /// Every socket once, with its name, for an upgrade to pass on (workers sharing a socket
    /// pass it once).
    pub fn handoff(&self) -> Vec<(&'static str, BorrowedFd<'_>)> {
        let mut seen = HashSet::new();
        self.bound
            .iter()
            .filter(|b| seen.insert(Arc::as_ptr(&b.socket)))
            .map(|b| (b.spec.name, b.socket.as_fd()))
            .collect()
    }

    /// Closes every TCP listener now (the drain: no new connection), keeping the UDP sockets
    /// served until the rest is closed (by dropping this set).
    pub fn close_tcp(&mut self) {
        self.bound.retain(|b| {
            let keep = b.spec.transport != Transport::Tcp;
            if !keep {
                b.stop.cancel();
            }
            keep
        });
    }
}

fn bind_error(spec: &Spec, error: io::Error) -> ListenError {
    ListenError::Bind {
        key: spec.key,
        addr: spec.addr,
        transport: spec.transport,
        error,
    }
}

/// Finds the port for a new group at `addr`: the configured one after checking nobody holds
/// it (a UDP port shared with `SO_REUSEPORT` would otherwise be joined silently), or, for port
/// 0, one free for every transport the group needs. The probes are closed again.
fn probe(addr: SocketAddr, group: &[&Spec]) -> io::Result<u16> {
    let udp = group.iter().any(|s| s.transport == Transport::Udp);
    let tcp = group.iter().any(|s| s.transport == Transport::Tcp);
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let first = if udp { Transport::Udp } else { Transport::Tcp };
        let probe = bind(addr, first, false)?;
        let port = local_addr(&probe)?.port();
        if first == Transport::Udp && tcp {
            match bind(SocketAddr::new(addr.ip(), port), Transport::Tcp, false) {
                Ok(_) => {}
                Err(error) if addr.port() == 0 && error.kind() == io::ErrorKind::AddrInUse => {
                    last = Some(error);
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        return Ok(port);
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// A bound socket; `share` sets the options that let the real sockets of a group (and a
/// restarted onebox) bind it: `SO_REUSEPORT` on UDP, `SO_REUSEADDR` and `listen` on TCP.
fn bind(addr: SocketAddr, transport: Transport, share: bool) -> io::Result<Socket> {
    let (kind, protocol) = match transport {
        Transport::Udp => (Type::DGRAM, Protocol::UDP),
        Transport::Tcp => (Type::STREAM, Protocol::TCP),
    };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if share {
        match transport {
            Transport::Udp => socket.set_reuse_port(true)?,
            Transport::Tcp => socket.set_reuse_address(true)?,
        }
    }
    socket.bind(&addr.into())?;
    if share && transport == Transport::Tcp {
        socket.listen(1024)?;
    }
    Ok(socket)
}

fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))
}

/// Sockets passed to this process at start, not yet taken.
#[derive(Debug, Default)]
pub struct Inherited {
    sockets: Vec<Passed>,
    /// Every name in use for a spec, so that a passed socket named after another spec is not
    /// given to this one.
    names: Vec<&'static str>,
}

#[derive(Debug)]
struct Passed {
    name: String,
    transport: Transport,
    local: SocketAddr,
    socket: Socket,
}

impl Inherited {
    /// No sockets.
    pub fn none() -> Self {
        Self::default()
    }

    /// The sockets passed to this process: by socket activation (`LISTEN_FDS` descriptors
    /// from 3 on, named by `LISTEN_FDNAMES`, colon-separated, when `LISTEN_PID` is this
    /// process), or by the onebox that started this one for an upgrade (`ops::upgrade`).
    /// `names` are the names specs use. Each descriptor is checked (an IP socket, listening if
    /// TCP) and marked close-on-exec.
    pub fn from_env(names: &[&'static str]) -> Result<Self, ListenError> {
        let var = |name: &str| std::env::var(name).ok();
        let mut passed_fds: Vec<(RawFd, String)> = Vec::new();
        if var("LISTEN_PID").and_then(|pid| pid.parse().ok()) == Some(std::process::id()) {
            let count = var("LISTEN_FDS").unwrap_or_default();
            let count = count.parse::<RawFd>().map_err(|_| ListenError::Inherited {
                fd: LISTEN_FDS_START,
                message: format!("LISTEN_FDS={count} is not a number"),
            })?;
            let fd_names = var("LISTEN_FDNAMES").unwrap_or_default();
            let mut fd_names = fd_names.split(':');
            for fd in LISTEN_FDS_START..LISTEN_FDS_START.saturating_add(count) {
                let name = fd_names.next().unwrap_or("unknown").to_owned();
                passed_fds.push((fd, name));
            }
        } else if let Some(handoff) = super::upgrade::Handoff::from_env() {
            passed_fds = handoff.sockets;
        }
        let mut inherited = Self {
            sockets: Vec::new(),
            names: names.to_vec(),
        };
        for (fd, name) in passed_fds {
            inherited.sockets.push(passed(fd, name)?);
        }
        Ok(inherited)
    }

    /// How many sockets are left.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether none is left.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Closes what no spec took, with a warning for each.
    pub fn close_rest(&mut self) {
        for passed in self.sockets.drain(..) {
            tracing::warn!(
                name = passed.name,
                addr = %passed.local,
                transport = %passed.transport,
                "an inherited socket matches no configured address; closed"
            );
        }
    }

    fn take(&mut self, spec: &Spec, port: Option<u16>) -> Option<(Socket, SocketAddr)> {
        let fits = |p: &Passed, named: bool| {
            let name_ok = if named {
                p.name == spec.name
            } else {
                !self.names.contains(&p.name.as_str())
            };
            let addr_ok = if spec.addr.port() == 0 {
                named
                    && p.local.ip() == spec.addr.ip()
                    && port.is_none_or(|port| port == p.local.port())
            } else {
                p.local == spec.addr
            };
            p.transport == spec.transport && name_ok && addr_ok
        };
        let at = self
            .sockets
            .iter()
            .position(|p| fits(p, true))
            .or_else(|| self.sockets.iter().position(|p| fits(p, false)))?;
        let passed = self.sockets.remove(at);
        Some((passed.socket, passed.local))
    }
}

/// Takes descriptor `fd` as a passed listening socket.
fn passed(fd: RawFd, name: String) -> Result<Passed, ListenError> {
    let error = |message: String| ListenError::Inherited { fd, message };
    // SAFETY: fcntl(F_GETFD) only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(error(
            "not an open descriptor (LISTEN_FDS counts too many)".to_owned(),
        ));
    }
    // SAFETY: the descriptor is open (checked above) and was passed to this process to own:
    // nothing else in the process refers to it.
    let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let kind = socket
        .r#type()
        .map_err(|e| error(format!("not a socket: {e}")))?;
    let transport = if kind == Type::DGRAM {
        Transport::Udp
    } else if kind == Type::STREAM {
        Transport::Tcp
    } else {
        return Err(error(format!(
            "{name}: neither a datagram nor a stream socket"
        )));
    };
    if transport == Transport::Tcp && !socket.is_listener().unwrap_or(false) {
        return Err(error(format!(
            "{name}: a stream socket that is not listening (Accept=no is what onebox needs)"
        )));
    }
    let local = local_addr(&socket).map_err(|e| error(format!("{name}: {e}")))?;
    socket
        .set_cloexec(true)
        .map_err(|e| error(format!("{name}: {e}")))?;
    Ok(Passed {
        name,
        transport,
        local,
        socket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &'static str, transport: Transport, addr: &str, index: usize) -> Spec {
        Spec {
            name,
            key: "test.listen",
            transport,
            addr: addr.parse().expect("addr"),
            index,
        }
    }

    fn dns(addr: &str, workers: usize) -> Vec<Spec> {
        let mut specs: Vec<Spec> = (0..workers)
            .map(|i| spec("dns", Transport::Udp, addr, i))
            .collect();
        specs.push(spec("dns", Transport::Tcp, addr, 0));
        specs
    }

    #[test]
    fn a_group_shares_one_port_and_workers_share_the_udp_socket_address() {
        let shutdown = CancellationToken::new();
        let wanted = dns("127.0.0.1:0", 3);
        let listeners = Listeners::open(&wanted, &mut Inherited::none(), &shutdown).expect("open");
        let ports: HashSet<u16> = listeners.iter().map(|b| b.local_addr().port()).collect();
        assert_eq!(ports.len(), 1, "{listeners:?}");
        assert_eq!(listeners.iter().count(), 4);
    }

    #[test]
    fn a_port_held_by_someone_else_is_refused_even_for_reuseport_udp() {
        let other = bind("127.0.0.1:0".parse().unwrap(), Transport::Udp, true).expect("other");
        let taken = local_addr(&other).expect("addr");
        let wanted = vec![spec("dns", Transport::Udp, &taken.to_string(), 0)];
        let error = Listeners::open(&wanted, &mut Inherited::none(), &CancellationToken::new())
            .expect_err("in use");
        assert!(error.to_string().contains("another process"), "{error}");
    }

    #[test]
    fn overlapping_addresses_are_refused_before_binding() {
        let wanted = vec![
            spec("http", Transport::Tcp, "0.0.0.0:8080", 0),
            spec("https", Transport::Tcp, "127.0.0.1:8080", 0),
        ];
        let error = check(&wanted).expect_err("overlap");
        assert!(
            error.to_string().contains("overlaps 0.0.0.0:8080"),
            "{error}"
        );
        let fine = vec![
            spec("http", Transport::Tcp, "0.0.0.0:8080", 0),
            spec("https", Transport::Tcp, "[::]:8080", 0),
            spec("dns", Transport::Udp, "0.0.0.0:8080", 0),
            spec("dns", Transport::Udp, "0.0.0.0:8080", 1),
        ];
        check(&fine).expect("no overlap");
    }

    #[test]
    fn update_binds_the_new_closes_the_gone_and_keeps_the_rest() {
        let shutdown = CancellationToken::new();
        let mut listeners =
            Listeners::open(&dns("127.0.0.1:0", 1), &mut Inherited::none(), &shutdown)
                .expect("open");
        let kept: Vec<SocketAddr> = listeners.iter().map(Bound::local_addr).collect();
        let mut wanted = dns("127.0.0.1:0", 2);
        wanted.push(spec("http", Transport::Tcp, "127.0.0.1:0", 0));
        let changes = listeners.update(&wanted).expect("update");
        assert_eq!(changes.added.len(), 2);
        assert!(changes.removed.is_empty());
        let second = &changes.added[0];
        assert_eq!(second.spec().index, 1);
        assert_eq!(
            second.local_addr(),
            kept[0],
            "a new worker joins the group's port"
        );
        let http = changes.added[1].clone();
        let changes = listeners.update(&dns("127.0.0.1:0", 1)).expect("update");
        assert_eq!(changes.removed.len(), 2);
        assert!(http.stop().is_cancelled());
        let now: Vec<SocketAddr> = listeners.iter().map(Bound::local_addr).collect();
        assert_eq!(now, kept);
    }

    #[test]
    fn passed_sockets_are_matched_by_name_and_address() {
        let udp = bind("127.0.0.1:0".parse().unwrap(), Transport::Udp, true).expect("udp");
        let tcp = bind("127.0.0.1:0".parse().unwrap(), Transport::Tcp, true).expect("tcp");
        let web = bind("127.0.0.1:0".parse().unwrap(), Transport::Tcp, true).expect("web");
        let web_addr = local_addr(&web).unwrap();
        let udp_addr = local_addr(&udp).unwrap();
        let mut inherited = Inherited {
            names: vec!["dns", "http", "https"],
            sockets: vec![
                Passed {
                    name: "onebox.socket".to_owned(),
                    transport: Transport::Tcp,
                    local: web_addr,
                    socket: web,
                },
                Passed {
                    name: "dns".to_owned(),
                    transport: Transport::Tcp,
                    local: local_addr(&tcp).unwrap(),
                    socket: tcp,
                },
                Passed {
                    name: "dns".to_owned(),
                    transport: Transport::Udp,
                    local: udp_addr,
                    socket: udp,
                },
            ],
        };
        // The DNS group asks for port 0: the passed "dns" sockets on that address fit; the
        // unnamed one fits the configured web address exactly.
        let mut wanted = vec![spec("dns", Transport::Udp, "127.0.0.1:0", 0)];
        wanted.push(spec("http", Transport::Tcp, &web_addr.to_string(), 0));
        let listeners =
            Listeners::open(&wanted, &mut inherited, &CancellationToken::new()).expect("open");
        assert!(listeners.iter().all(Bound::inherited));
        assert_eq!(listeners.iter().next().unwrap().local_addr(), udp_addr);
        assert_eq!(inherited.len(), 1, "the DNS TCP socket was not wanted");
        inherited.close_rest();
        assert!(inherited.is_empty());
    }
}
