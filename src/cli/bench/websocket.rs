//! A minimal WebSocket client for the soak benchmark's subscribers, speaking graphql-transport-ws
//! to Docket's `GET /graphql`: the upgrade, masked text frames out, and unmasked frames in
//! (text, ping, close; fragmented messages are put back together). It exists so the benchmark
//! needs no WebSocket dependency, and understands what Docket's server sends, no more; the
//! server's `Sec-WebSocket-Accept` is not checked (the status 101 and the protocol are).

use std::io;
use std::net::SocketAddr;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::find;
use super::load::Random;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// Largest message accepted from the server.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// An open graphql-transport-ws connection, acknowledged by the server.
pub struct Socket {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// A fragmented message received so far.
    partial: Vec<u8>,
    random: Random,
}

/// What the server sent.
pub enum Incoming {
    /// A graphql-transport-ws message.
    Message(Value),
    /// The server closed the connection, with this code (1005 when it gave none).
    Closed(u16),
    /// Nothing complete arrived before the deadline.
    Idle,
}

fn broken(detail: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail.to_owned())
}

impl Socket {
    /// Upgrades a connection to `address`, sends `connection_init` with the bearer token and
    /// waits for `connection_ack`.
    pub async fn connect(address: SocketAddr, token: &str, seed: u64) -> io::Result<Self> {
        let mut stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let mut random = Random(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_add(1));
        let key: Vec<u8> = (0..2).flat_map(|_| random.next().to_le_bytes()).collect();
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let upgrade = format!(
            "GET /graphql HTTP/1.1\r\nhost: bench\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
             sec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n\
             sec-websocket-protocol: graphql-transport-ws\r\n\r\n"
        );
        stream.write_all(upgrade.as_bytes()).await?;
        let mut buffer = Vec::with_capacity(16 * 1024);
        let end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end;
            }
            if buffer.len() > 64 * 1024 {
                return Err(broken("upgrade response too long"));
            }
            fill(&mut stream, &mut buffer).await?;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
        if head.split(' ').nth(1) != Some("101") || !head.contains("graphql-transport-ws") {
            return Err(broken("the upgrade was refused"));
        }
        buffer.drain(..end + 4);
        let mut socket = Socket {
            stream,
            buffer,
            partial: Vec::new(),
            random,
        };
        let authorization = format!("Bearer {token}");
        socket
            .send(&json!({"type": "connection_init", "payload": {"authorization": authorization}}))
            .await?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        match socket.receive_until(deadline).await? {
            Incoming::Message(message) if message["type"] == "connection_ack" => Ok(socket),
            _ => Err(broken("the connection was not acknowledged")),
        }
    }

    /// Sends one message as a masked text frame.
    pub async fn send(&mut self, message: &Value) -> io::Result<()> {
        self.frame(TEXT, message.to_string().as_bytes()).await
    }

    /// The next message, answering pings (of the WebSocket and of the protocol) on the way;
    /// [`Incoming::Idle`] if none is complete at `deadline` (what was read so far is kept).
    pub async fn receive_until(&mut self, deadline: tokio::time::Instant) -> io::Result<Incoming> {
        loop {
            let Some((fin, opcode, payload)) = self.read_frame(deadline).await? else {
                return Ok(Incoming::Idle);
            };
            match opcode {
                PING => self.frame(PONG, &payload).await?,
                PONG => {}
                CLOSE => {
                    let code = match payload.get(..2) {
                        Some(&[high, low]) => u16::from_be_bytes([high, low]),
                        _ => 1005,
                    };
                    return Ok(Incoming::Closed(code));
                }
                // Text, binary or a continuation of either.
                _ => {
                    self.partial.extend_from_slice(&payload);
                    if self.partial.len() > MAX_MESSAGE {
                        return Err(broken("message too large"));
                    }
                    if fin {
                        let message = std::mem::take(&mut self.partial);
                        let value: Value = serde_json::from_slice(&message)
                            .map_err(|_| broken("a message that is not JSON"))?;
                        if value["type"] == "ping" {
                            self.send(&json!({"type": "pong"})).await?;
                            continue;
                        }
                        return Ok(Incoming::Message(value));
                    }
                }
            }
        }
    }

    async fn frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            length @ 0..=125 => frame.push(0x80 | length as u8),
            length @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(length as u16).to_be_bytes());
            }
            length => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(length as u64).to_be_bytes());
            }
        }
        let mask = (self.random.next() as u32).to_le_bytes();
        frame.extend_from_slice(&mask);
        frame.extend(
            payload
                .iter()
                .zip(mask.iter().cycle())
                .map(|(byte, key)| byte ^ key),
        );
        self.stream.write_all(&frame).await
    }

    /// One frame from the server, (FIN, opcode, payload), or `None` at `deadline`.
    async fn read_frame(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> io::Result<Option<(bool, u8, Vec<u8>)>> {
        loop {
            if let Some((header, length)) = frame_length(&self.buffer)? {
                if length > MAX_MESSAGE {
                    return Err(broken("frame too large"));
                }
                if self.buffer.len() >= header + length {
                    let first = self.buffer.first().copied().unwrap_or(0);
                    let payload = self.buffer[header..header + length].to_vec();
                    self.buffer.drain(..header + length);
                    return Ok(Some((first & 0x80 != 0, first & 0x0f, payload)));
                }
            }
            // Reading is the only wait cut short: what it gets is kept in the buffer.
            match tokio::time::timeout_at(deadline, fill(&mut self.stream, &mut self.buffer)).await
            {
                Ok(result) => result?,
                Err(_) => return Ok(None),
            }
        }
    }
}

/// The header's length and the payload's, once the buffer holds the whole header.
fn frame_length(buffer: &[u8]) -> io::Result<Option<(usize, usize)>> {
    let Some(&second) = buffer.get(1) else {
        return Ok(None);
    };
    if second & 0x80 != 0 {
        return Err(broken("a masked frame from the server"));
    }
    let (header, length) = match second & 0x7f {
        126 => match buffer.get(2..4) {
            Some(&[high, low]) => (4, usize::from(u16::from_be_bytes([high, low]))),
            _ => return Ok(None),
        },
        127 => match buffer
            .get(2..10)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        {
            Some(bytes) => (
                10,
                usize::try_from(u64::from_be_bytes(bytes)).unwrap_or(usize::MAX),
            ),
            None => return Ok(None),
        },
        length => (2, usize::from(length)),
    };
    Ok(Some((header, length)))
}

async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let read = stream.read(&mut chunk).await?;
    if read == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::frame_length;

    #[test]
    fn frame_lengths_of_each_size_are_read() {
        assert_eq!(frame_length(&[0x81]).unwrap(), None);
        assert_eq!(frame_length(&[0x81, 5]).unwrap(), Some((2, 5)));
        assert_eq!(frame_length(&[0x81, 126, 1]).unwrap(), None);
        assert_eq!(frame_length(&[0x81, 126, 1, 0]).unwrap(), Some((4, 256)));
        let mut long = vec![0x81, 127];
        long.extend_from_slice(&70_000u64.to_be_bytes());
        assert_eq!(frame_length(&long).unwrap(), Some((10, 70_000)));
        assert!(frame_length(&[0x81, 0x85]).is_err());
    }
}
