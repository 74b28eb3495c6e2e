//! Async-signal-safe output: a fixed buffer flushed with `write(2)`.
//!
//! Everything the dump prints goes through [`Out`]: no allocation, no
//! `format!`, no lock (not even stderr's), no thread-local with lazy
//! initialisation. Numbers are formatted by hand.

/// A line buffer on the handler's stack, flushed to a file descriptor.
#[derive(Debug)]
pub struct Out {
    fd: i32,
    buf: [u8; 1024],
    len: usize,
}

impl Out {
    /// A buffer that writes to `fd`.
    pub const fn new(fd: i32) -> Out {
        Out {
            fd,
            buf: [0; 1024],
            len: 0,
        }
    }

    /// A buffer writing to stderr.
    pub const fn stderr() -> Out {
        Out::new(2)
    }

    /// Appends bytes, flushing as needed.
    pub fn bytes(&mut self, mut b: &[u8]) -> &mut Self {
        while !b.is_empty() {
            if self.len == self.buf.len() {
                self.flush();
            }
            let n = b.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
            self.len += n;
            b = &b[n..];
        }
        self
    }

    /// Appends a string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends `0x` and lowercase hex digits.
    pub fn hex(&mut self, v: u64) -> &mut Self {
        let mut tmp = [0u8; 18];
        let mut i = tmp.len();
        let mut v = v;
        loop {
            i -= 1;
            tmp[i] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        i -= 1;
        tmp[i] = b'x';
        i -= 1;
        tmp[i] = b'0';
        self.bytes(&tmp[i..])
    }

    /// Appends a decimal number.
    pub fn dec(&mut self, v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        let mut v = v;
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&tmp[i..])
    }

    /// Appends a signed decimal number.
    pub fn idec(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.str("-");
        }
        self.dec(v.unsigned_abs())
    }

    /// Appends a newline and flushes.
    pub fn nl(&mut self) -> &mut Self {
        self.bytes(b"\n");
        self.flush();
        self
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: the range is inside our buffer; write(2) is
            // async-signal-safe.
            let n =
                unsafe { libc::write(self.fd, self.buf[done..].as_ptr().cast(), self.len - done) };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        self.len = 0;
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_like_core() {
        let mut fds = [0i32; 2];
        // SAFETY: fds is a valid out-array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        {
            let mut o = Out::new(fds[1]);
            o.hex(0)
                .str(" ")
                .hex(0xdead_beef)
                .str(" ")
                .dec(0)
                .str(" ")
                .dec(u64::MAX)
                .str(" ")
                .idec(-42)
                .nl();
        }
        let mut buf = [0u8; 128];
        // SAFETY: reading into a valid buffer from our own pipe.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        let s = std::str::from_utf8(&buf[..n as usize]).unwrap();
        assert_eq!(s, format!("0x0 0xdeadbeef 0 {} -42\n", u64::MAX));
        // SAFETY: closing our own descriptors.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
