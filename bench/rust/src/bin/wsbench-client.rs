//! The benchmark's native clients: a plain tungstenite client (the ceiling for any binding)
//! and a raw TCP ping-pong of the same bytes (the floor).
//!
//! wsbench-client --client tungstenite|tcp --scenario S --addr HOST:PORT --n N [--warmup W]
//! prints one JSON object: {"ops", "secs", "cpu", ...} (cpu = user+sys seconds of the
//! whole process over the timed part, from getrusage).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use tungstenite::{Bytes, Message, WebSocket};

fn cpu() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap()))
        .unwrap()
}

struct Args {
    client: String,
    scenario: String,
    addr: String,
    n: usize,
    warmup: usize,
}

fn args() -> Args {
    let mut a = Args { client: String::new(), scenario: String::new(), addr: String::new(), n: 0, warmup: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().expect("value");
        match k.as_str() {
            "--client" => a.client = v,
            "--scenario" => a.scenario = v,
            "--addr" => a.addr = v,
            "--n" => a.n = v.parse().unwrap(),
            "--warmup" => a.warmup = v.parse().unwrap(),
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

/// (payload size, text?) of an echo scenario.
fn echo_shape(scenario: &str) -> (usize, bool) {
    match scenario {
        "rt64" => (64, true),
        "echo16k" => (16 * 1024, false),
        "echo1m" => (1024 * 1024, false),
        other => panic!("not an echo scenario: {other}"),
    }
}

fn ws_connect(addr: &str, path: &str) -> WebSocket<TcpStream> {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://{addr}{path}"), s).expect("handshake");
    ws
}

fn read_data(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read().expect("read") {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            _ => continue,
        }
    }
}

fn close(mut ws: WebSocket<TcpStream>) {
    let _ = ws.close(None);
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(_) => break,
        }
    }
}

fn report(ops: usize, secs: f64, cpu: f64, extra: &str) {
    println!("{{\"ops\": {ops}, \"secs\": {secs}, \"cpu\": {cpu}{extra}}}");
}

fn tungstenite_echo(a: &Args) {
    let (size, text) = echo_shape(&a.scenario);
    let mut ws = ws_connect(&a.addr, "/echo");
    let msg = if text {
        Message::Text("x".repeat(size).into())
    } else {
        Message::Binary(Bytes::from((0..size).map(|i| i as u8).collect::<Vec<u8>>()))
    };
    let mut run = |n: usize| {
        for _ in 0..n {
            ws.send(msg.clone()).expect("send");
            let m = read_data(&mut ws);
            assert_eq!(m.len(), size);
        }
    };
    run(a.warmup);
    let (t0, c0) = (Instant::now(), cpu());
    run(a.n);
    let (secs, c) = (t0.elapsed().as_secs_f64(), cpu() - c0);
    close(ws);
    report(a.n, secs, c, "");
}

fn tungstenite_push(a: &Args) {
    let mut ws = ws_connect(&a.addr, &format!("/push?n={}&size=100", a.n));
    let (t0, c0) = (Instant::now(), cpu());
    ws.send(Message::Text("go".into())).expect("send");
    for _ in 0..a.n {
        let m = read_data(&mut ws);
        assert_eq!(m.len(), 100);
    }
    let (secs, c) = (t0.elapsed().as_secs_f64(), cpu() - c0);
    close(ws);
    report(a.n, secs, c, "");
}

fn tungstenite_handshake(a: &Args) {
    for _ in 0..a.warmup {
        close(ws_connect(&a.addr, "/echo"));
    }
    let (t0, c0) = (Instant::now(), cpu());
    for _ in 0..a.n {
        close(ws_connect(&a.addr, "/echo"));
    }
    report(a.n, t0.elapsed().as_secs_f64(), cpu() - c0, "");
}

fn tungstenite_idle(a: &Args) {
    close(ws_connect(&a.addr, "/echo"));
    let (rss0, th0) = (proc_status("VmRSS:"), proc_status("Threads:"));
    let mut conns = Vec::with_capacity(a.n);
    for _ in 0..a.n {
        conns.push(ws_connect(&a.addr, "/echo"));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (rss1, th1) = (proc_status("VmRSS:"), proc_status("Threads:"));
    report(a.n, 0.0, 0.0, &format!(", \"rss_kib\": {}, \"threads\": {}", rss1 as i64 - rss0 as i64, th1 as i64 - th0 as i64));
    for ws in conns {
        close(ws);
    }
}

/// Raw TCP: the request is the masked client frame's bytes, the answer the server frame's.
fn tcp(a: &Args) {
    let (size, _) = echo_shape(&a.scenario);
    let ext = |len: usize| if len < 126 { 0 } else if len <= 0xffff { 2 } else { 8 };
    let req = 2 + ext(size) + 4 + size;
    let resp = 2 + ext(size) + size;
    let mut s = TcpStream::connect(&a.addr).expect("connect");
    s.set_nodelay(true).unwrap();
    let mut hello = b"RAW1".to_vec();
    hello.extend_from_slice(&(req as u32).to_le_bytes());
    hello.extend_from_slice(&(resp as u32).to_le_bytes());
    s.write_all(&hello).unwrap();
    let out: Vec<u8> = (0..req).map(|i| i as u8).collect();
    let mut inbuf = vec![0u8; resp];
    let mut run = |n: usize| {
        for _ in 0..n {
            s.write_all(&out).unwrap();
            s.read_exact(&mut inbuf).unwrap();
        }
    };
    run(a.warmup);
    let (t0, c0) = (Instant::now(), cpu());
    run(a.n);
    report(a.n, t0.elapsed().as_secs_f64(), cpu() - c0, "");
}

fn main() {
    let a = args();
    match (a.client.as_str(), a.scenario.as_str()) {
        ("tcp", _) => tcp(&a),
        ("tungstenite", "push100") => tungstenite_push(&a),
        ("tungstenite", "handshake") => tungstenite_handshake(&a),
        ("tungstenite", "idle200") => tungstenite_idle(&a),
        ("tungstenite", _) => tungstenite_echo(&a),
        (c, _) => panic!("unknown client {c}"),
    }
}
