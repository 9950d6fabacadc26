//! The sensor's wire counters against a real loopback connection (here,
//! not in src/: the sensor's sources may not open connections at all).

use std::io::{Read, Write};

/// The counters follow the connection after the stream itself is gone.
#[test]
fn counts_both_ways_past_the_stream() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut server, _) = l.accept().unwrap();
    let wire = port25_spampot::wire::Wire::of(&server);
    client.write_all(&[7u8; 5000]).unwrap();
    let mut got = vec![0u8; 5000];
    server.read_exact(&mut got).unwrap();
    server.write_all(b"250 ok\r\n").unwrap();
    let mut reply = [0u8; 8];
    client.read_exact(&mut reply).unwrap();
    drop(server);
    // The client's ACK of our 8 bytes may still be in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (i, o) = wire.counters().expect("Linux 4.2+ reports TCP byte counters");
        if o == 8 || std::time::Instant::now() > deadline {
            assert_eq!((i, o), (5000, 8));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
