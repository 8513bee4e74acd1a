//! One keep-alive HTTP/1.1 connection of a load generator: a request out, its whole answer
//! (a `Content-Length` body) back, nothing parsed that the measurement does not need.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, writer) = stream.into_split();
        Connection {
            reader: BufReader::new(read),
            writer,
        }
    }

    /// Sends a request with a JSON body and returns the response body.
    pub async fn send(&mut self, method: &str, path: &str, body: &str) -> Vec<u8> {
        self.exchange(method, path, body, |_| {}).await
    }

    /// `send`, showing each header line of the answer to `header`.
    pub async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        mut header: impl FnMut(&str),
    ) -> Vec<u8> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(request.as_bytes()).await.unwrap();
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            header(&line);
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        self.reader.read_exact(&mut answer).await.unwrap();
        answer
    }
}
