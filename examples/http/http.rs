//! An HTTP/1.1 server on a `listen` file of its Enarx.toml (with `prot = "tls"`, TLS ends inside the Keep and
//! the workload speaks plain HTTP). `GET /` answers with a page naming this example; other paths are 404.
//! Connections are kept alive and served together from one thread: non-blocking sockets and poll_oneoff,
//! which the standard library does not wrap, so it is declared here. The socket is found by name in
//! FD_NAMES (Enarx's convention): "https" unless the first argument names another.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::wasi::io::{AsRawFd, FromRawFd};

#[repr(C)]
#[derive(Clone, Copy)]
struct Subscription {
    userdata: u64,
    tag: u8,
    _pad: [u8; 7],
    fd: u32,
    _rest: [u8; 28],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Event {
    userdata: u64,
    error: u16,
    kind: u8,
    _pad: [u8; 5],
    nbytes: u64,
    flags: u16,
    _pad2: [u8; 6],
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn poll_oneoff(subs: *const Subscription, events: *mut Event, nsubs: u32, nevents: *mut u32) -> u16;
}

const FD_READ: u8 = 1;
const FD_WRITE: u8 = 2;
/** Largest request head accepted; past it the answer is 431. */
const MAX_HEAD: usize = 16 * 1024;

fn subscribe(fd: u32, tag: u8) -> Subscription {
    Subscription { userdata: fd as u64, tag, _pad: [0; 7], fd, _rest: [0; 28] }
}

fn poll(subs: &[Subscription]) -> Vec<u32> {
    let empty = Event { userdata: 0, error: 0, kind: 0, _pad: [0; 5], nbytes: 0, flags: 0, _pad2: [0; 6] };
    let mut events = vec![empty; subs.len()];
    let mut n: u32 = 0;
    let rc = unsafe { poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), subs.len() as u32, &mut n) };
    if rc != 0 {
        eprintln!("http: poll_oneoff failed with errno {}", rc);
        std::process::exit(1);
    }
    events[..n as usize].iter().map(|e| e.userdata as u32).collect()
}

fn descriptor(name: &str) -> Option<u32> {
    let names = std::env::var("FD_NAMES").ok()?;
    names.split(':').position(|n| n == name).map(|i| i as u32)
}

struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Close once the output is sent.
    closing: bool,
    /// The peer ended its side.
    ended: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn page(served: u64) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Donjon http example</title></head>\n\
         <body><h1>Hello from examples/http</h1>\n\
         <p>This page was served by <code>examples/http/http.wasm</code>, the Donjon http example: a \
         WebAssembly workload running inside a Keep. TLS ended inside the Keep, with a certificate whose \
         evidence names this workload.</p>\n<p>Requests served by this Keep so far: {}.</p></body></html>\n",
        served
    )
}

fn respond(out: &mut Vec<u8>, status: &str, extra: &str, body: &[u8], head_only: bool, close: bool) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {}\r\nServer: donjon-http-example\r\nContent-Length: {}\r\n{}Connection: {}\r\n\r\n",
            status,
            body.len(),
            extra,
            if close { "close" } else { "keep-alive" }
        )
        .as_bytes(),
    );
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Answers every complete request in the client's input; returns false on a request it cannot read.
fn serve(c: &mut Client, served: &mut u64) -> bool {
    loop {
        let end = match find(&c.input, b"\r\n\r\n") {
            Some(i) => i,
            None => {
                if c.input.len() > MAX_HEAD {
                    respond(&mut c.output, "431 Request Header Fields Too Large", "", b"", false, true);
                    c.closing = true;
                    return false;
                }
                return true;
            }
        };
        let head = match std::str::from_utf8(&c.input[..end]) {
            Ok(h) => h.to_string(),
            Err(_) => {
                respond(&mut c.output, "400 Bad Request", "", b"", false, true);
                c.closing = true;
                return false;
            }
        };
        let mut lines = head.split("\r\n");
        let request: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
        if request.len() != 3 || !request[2].starts_with("HTTP/1.") {
            respond(&mut c.output, "400 Bad Request", "", b"", false, true);
            c.closing = true;
            return false;
        }
        let (method, path, version) = (request[0], request[1], request[2]);
        let mut length = 0usize;
        let mut close = version == "HTTP/1.0";
        for line in lines {
            let (name, value) = match line.split_once(':') {
                Some((n, v)) => (n.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()),
                None => continue,
            };
            if name == "content-length" {
                length = value.parse().unwrap_or(usize::MAX);
            } else if name == "connection" {
                if value == "close" {
                    close = true;
                } else if value == "keep-alive" {
                    close = false;
                }
            }
        }
        if length > 1 << 20 {
            respond(&mut c.output, "413 Payload Too Large", "", b"", false, true);
            c.closing = true;
            return false;
        }
        if c.input.len() < end + 4 + length {
            return true;
        }
        c.input.drain(..end + 4 + length);
        let head_only = method == "HEAD";
        if method != "GET" && method != "HEAD" {
            respond(&mut c.output, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", b"", false, close);
        } else if path == "/" || path == "/index.html" {
            *served += 1;
            let body = page(*served);
            respond(
                &mut c.output,
                "200 OK",
                "Content-Type: text/html; charset=utf-8\r\n",
                body.as_bytes(),
                head_only,
                close,
            );
        } else {
            respond(&mut c.output, "404 Not Found", "Content-Type: text/plain\r\n", b"not found\n", head_only, close);
        }
        if close {
            c.closing = true;
            return true;
        }
    }
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "https".to_string());
    let fd = match descriptor(&name) {
        Some(fd) => fd,
        None => {
            eprintln!("http: no file named {} in FD_NAMES; add a listen file of that name", name);
            std::process::exit(2);
        }
    };
    let listener = unsafe { TcpListener::from_raw_fd(fd as i32) };
    listener.set_nonblocking(true).expect("non-blocking listener");
    eprintln!("http: serving on descriptor {} ({})", fd, name);
    let mut clients: HashMap<u32, Client> = HashMap::new();
    let mut served: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut subs = vec![subscribe(fd, FD_READ)];
        for (cfd, c) in &clients {
            subs.push(subscribe(*cfd, if c.output.is_empty() { FD_READ } else { FD_WRITE }));
        }
        for ready in poll(&subs) {
            if ready == fd {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(true).expect("non-blocking stream");
                            let cfd = stream.as_raw_fd() as u32;
                            let c = Client { stream, input: Vec::new(), output: Vec::new(), closing: false, ended: false };
                            clients.insert(cfd, c);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("http: accept: {}", e);
                            break;
                        }
                    }
                }
                continue;
            }
            let c = match clients.get_mut(&ready) {
                Some(c) => c,
                None => continue,
            };
            if c.output.is_empty() && !c.closing {
                match c.stream.read(&mut buf) {
                    Ok(0) => c.ended = true,
                    Ok(n) => {
                        c.input.extend_from_slice(&buf[..n]);
                        serve(c, &mut served);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => c.ended = true,
                }
            }
            while !c.output.is_empty() {
                match c.stream.write(&c.output) {
                    Ok(n) => {
                        c.output.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.output.clear();
                        c.ended = true;
                    }
                }
            }
            if c.output.is_empty() && !c.closing && !c.ended && !c.input.is_empty() {
                // Pipelined requests already read wait for the previous answer to go out.
                serve(c, &mut served);
            }
            if c.output.is_empty() && (c.closing || c.ended) {
                clients.remove(&ready);
            }
        }
    }
}
