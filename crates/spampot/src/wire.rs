//! Bytes on the wire per connection, for the report's bandwidth figures
//! (what the abuse costs the access network). The kernel counts them
//! (TCP_INFO `tcpi_bytes_received`, `tcpi_bytes_acked`, Linux 4.2+), so
//! every byte is in, whoever read it: the PROXY header, the handshake, the
//! SMTP session inside the engine, and what arrived but was never read.
//!
//! The engine owns the stream and closes it when the session ends, so the
//! connection keeps a duplicate of the socket's descriptor: the socket
//! (and its counters) lives until [`Wire`] is dropped, after the close
//! event is written.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub struct Wire(Option<OwnedFd>);

/// The start of Linux's `struct tcp_info` up to the byte counters
/// (uapi/linux/tcp.h; fields only ever appended). libc's copy stops
/// before them.
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    head: [u8; 8],
    times: [u32; 24],
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
}

impl Wire {
    pub fn of(tcp: &impl AsFd) -> Wire {
        Wire(tcp.as_fd().try_clone_to_owned().ok())
    }

    /// (bytes in, bytes out) so far; `None` where the kernel does not say
    /// (not Linux, or older than 4.2).
    pub fn counters(&self) -> Option<(u64, u64)> {
        let fd = self.0.as_ref()?;
        let mut info = TcpInfo::default();
        let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info`, which
        // we own and which is `len` bytes long; the fd is open (owned).
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut TcpInfo).cast(),
                &mut len,
            )
        };
        (rc == 0 && len as usize >= std::mem::size_of::<TcpInfo>()).then_some((info.bytes_received, info.bytes_acked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_kernel() {
        assert_eq!(std::mem::offset_of!(TcpInfo, bytes_acked), 120);
        assert_eq!(std::mem::offset_of!(TcpInfo, bytes_received), 128);
    }
}
