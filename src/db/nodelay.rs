//! TCP_NODELAY on the PostgreSQL connections, which sqlx 0.9.0 stopped setting
//! (transact-rs/sqlx#4335; fixed upstream by #4336, not released yet).
//!
//! Without it Nagle's algorithm holds back the tail of any message bigger than one TCP segment
//! until the server's delayed ACK arrives: about 40 ms for every batch insert, which made the
//! billing cycle wait far more than it worked. Each new pool connection runs
//! [`set_on_sockets_to`] from the pool's `after_connect` hook, which finds this process's TCP
//! sockets to the server's port and turns the option on (setting it again on an older
//! connection is harmless). Remove this module once sqlx sets the option itself again.

use std::io;

/// Sets TCP_NODELAY on every TCP socket of this process whose peer port is `port`; returns how
/// many it set. Sockets that close meanwhile are skipped.
#[cfg(target_os = "linux")]
pub fn set_on_sockets_to(port: u16) -> io::Result<usize> {
    use std::os::fd::{BorrowedFd, RawFd};

    let mut set = 0;
    for entry in std::fs::read_dir("/proc/self/fd")?.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: `fd` was open in this process a moment ago (it is listed in /proc/self/fd).
        // The borrow only lives for the two calls below, which neither close nor take over the
        // descriptor; if it was closed meanwhile they fail with EBADF and it is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let to_server = socket
            .peer_addr()
            .ok()
            .and_then(|addr| addr.as_socket())
            .is_some_and(|addr| addr.port() == port);
        if to_server && socket.set_tcp_nodelay(true).is_ok() {
            set += 1;
        }
    }
    Ok(set)
}

#[cfg(not(target_os = "linux"))]
pub fn set_on_sockets_to(_port: u16) -> io::Result<usize> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sets_the_option_on_sockets_to_the_port_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bystander =
            std::net::TcpStream::connect(("127.0.0.1", other.local_addr().unwrap().port()))
                .unwrap();
        assert!(!client.nodelay().unwrap());
        assert!(set_on_sockets_to(port).unwrap() >= 1);
        assert!(client.nodelay().unwrap());
        assert!(!bystander.nodelay().unwrap());
    }
}
