//! An echo server on a `listen` file of its Enarx.toml: sends every byte each client sends straight back,
//! until the client ends its side. It finds its socket by name in FD_NAMES (Enarx's convention: descriptor n
//! is the n-th name), "echo" unless the first argument names another. Many clients are served at once from
//! one thread: non-blocking sockets and poll_oneoff, which the standard library does not wrap, so it is
//! declared here.

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

fn subscribe(fd: u32, tag: u8) -> Subscription {
    Subscription { userdata: fd as u64, tag, _pad: [0; 7], fd, _rest: [0; 28] }
}

/// Waits until one of the subscriptions is ready; returns the descriptors that are.
fn poll(subs: &[Subscription]) -> Vec<u32> {
    let empty = Event { userdata: 0, error: 0, kind: 0, _pad: [0; 5], nbytes: 0, flags: 0, _pad2: [0; 6] };
    let mut events = vec![empty; subs.len()];
    let mut n: u32 = 0;
    let rc = unsafe { poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), subs.len() as u32, &mut n) };
    if rc != 0 {
        eprintln!("echo: poll_oneoff failed with errno {}", rc);
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
    pending: Vec<u8>,
    done: bool,
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "echo".to_string());
    let fd = match descriptor(&name) {
        Some(fd) => fd,
        None => {
            eprintln!("echo: no file named {} in FD_NAMES; add a listen file of that name", name);
            std::process::exit(2);
        }
    };
    let listener = unsafe { TcpListener::from_raw_fd(fd as i32) };
    listener.set_nonblocking(true).expect("non-blocking listener");
    eprintln!("echo: serving on descriptor {} ({})", fd, name);
    let mut clients: HashMap<u32, Client> = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut subs = vec![subscribe(fd, FD_READ)];
        for (cfd, c) in &clients {
            subs.push(subscribe(*cfd, if c.pending.is_empty() { FD_READ } else { FD_WRITE }));
        }
        for ready in poll(&subs) {
            if ready == fd {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(true).expect("non-blocking stream");
                            let cfd = stream.as_raw_fd() as u32;
                            clients.insert(cfd, Client { stream, pending: Vec::new(), done: false });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("echo: accept: {}", e);
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
            if c.pending.is_empty() {
                match c.stream.read(&mut buf) {
                    Ok(0) => c.done = true,
                    Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => c.done = true,
                }
            }
            while !c.pending.is_empty() {
                match c.stream.write(&c.pending) {
                    Ok(n) => {
                        c.pending.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.pending.clear();
                        c.done = true;
                    }
                }
            }
            if c.done && c.pending.is_empty() {
                clients.remove(&ready);
            }
        }
    }
}
