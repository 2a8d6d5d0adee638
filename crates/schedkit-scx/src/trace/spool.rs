//! BPF ring buffers copied to the spool file in bulk.
//!
//! libbpf hands a ring's records to a callback one by one, and the recorder used to
//! copy each into a buffer and that buffer into the file: two copies and a call per
//! record, paid while the load being recorded runs. Here the recorder maps the ring
//! itself (the kernel's layout: a page with the consumer's position, a page with the
//! producer's, then the data, mapped twice in a row so that a span that wraps is
//! contiguous), walks the record headers only to find where the committed records
//! end, and hands that whole span to one `write(2)`: the kernel's copy into the file
//! is the only one. The spool therefore keeps the ring's own framing (an 8-byte
//! header per record, records padded to 8 bytes); [`read_record`] reads it back.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use libbpf_rs::MapCore;

/// The record is still being written (`BPF_RINGBUF_BUSY_BIT`).
const BUSY: u32 = 1 << 31;
/// The record was dropped by its writer (`BPF_RINGBUF_DISCARD_BIT`).
const DISCARD: u32 = 1 << 30;
/// A record's header (`BPF_RINGBUF_HDR_SZ`): its length and flags, then the kernel's
/// page offset, which the consumer does not need.
const HDR: usize = 8;

/// The space a record of `len` bytes takes in the ring and in the spool.
fn framed_len(len: u32) -> u64 {
    (len as u64 + HDR as u64 + 7) & !7
}

/// Writes a record of the recorder's own, framed as the ring frames its records.
pub(super) fn write_record(out: &mut impl Write, rec: &[u8]) -> io::Result<()> {
    let mut header = [0u8; HDR];
    header[0..4].copy_from_slice(&(rec.len() as u32).to_ne_bytes());
    out.write_all(&header)?;
    out.write_all(rec)?;
    let pad = (framed_len(rec.len() as u32) as usize) - HDR - rec.len();
    out.write_all(&[0u8; 8][..pad])
}

/// Reads the next record of a spool into `buf`: `Some(true)` with the record's bytes
/// in `buf`, `Some(false)` for a record its writer discarded, `None` at the end.
pub(super) fn read_record(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    let mut h = [0u8; HDR];
    match r.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let word = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
    let len = word & !(BUSY | DISCARD);
    let body = framed_len(len) as usize - HDR;
    buf.resize(body, 0);
    r.read_exact(buf)?;
    buf.truncate(len as usize);
    Ok(Some(word & DISCARD == 0))
}

/// A BPF ring buffer mapped for bulk copying. The recorder is its only consumer.
pub(super) struct SpoolRing {
    /// Keeps the map alive (the mappings would too).
    _fd: OwnedFd,
    consumer: *mut libc::c_void,
    page: usize,
    /// The producer's page, then the data twice.
    producer: *mut libc::c_void,
    producer_len: usize,
    size: u64,
}

impl SpoolRing {
    /// Maps the ring `map` (a `BPF_MAP_TYPE_RINGBUF`).
    pub(super) fn new(map: &dyn MapCore) -> io::Result<SpoolRing> {
        let fd = map.as_fd().try_clone_to_owned()?;
        let size = map.max_entries() as u64;
        if !size.is_power_of_two() {
            return Err(io::Error::other("a ring buffer's size is a power of two"));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: a fresh shared mapping of the ring's first page (the consumer's
        // position, which the kernel lets the consumer write); checked below.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if consumer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let producer_len = page + 2 * size as usize;
        // SAFETY: as above; the producer's page and the data are read-only.
        let producer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                producer_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                page as libc::off_t,
            )
        };
        if producer == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            // SAFETY: the mapping made above, not used after this.
            unsafe { libc::munmap(consumer, page) };
            return Err(e);
        }
        Ok(SpoolRing {
            _fd: fd,
            consumer,
            page,
            producer,
            producer_len,
            size,
        })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the page is mapped while self lives, page-aligned, and the kernel
        // keeps the consumer's position at its start.
        unsafe { AtomicU64::from_ptr(self.consumer.cast()) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as for consumer_pos.
        unsafe { AtomicU64::from_ptr(self.producer.cast()) }
    }

    fn data(&self) -> *const u8 {
        // SAFETY: the data starts one page into the producer's mapping.
        unsafe { self.producer.cast::<u8>().add(self.page) }
    }

    /// Copies the records committed so far to `out` and frees their space. Returns
    /// how many records it copied (discarded ones not counted) and the share of the
    /// ring they took.
    pub(super) fn drain_into(&mut self, out: &mut File) -> io::Result<(u64, f64)> {
        let cons = self.consumer_pos().load(Ordering::Acquire);
        let prod = self.producer_pos().load(Ordering::Acquire);
        let mask = self.size - 1;
        let mut pos = cons;
        let mut records = 0u64;
        while pos < prod && pos - cons < self.size {
            // SAFETY: a record's header lies at an 8-byte-aligned offset below the
            // data's size, inside the mapping; the producer writes it atomically.
            let word =
                unsafe { AtomicU32::from_ptr(self.data().add((pos & mask) as usize) as *mut u32) }
                    .load(Ordering::Acquire);
            if word & BUSY != 0 {
                break;
            }
            let next = pos + framed_len(word & !(BUSY | DISCARD));
            if next - cons > self.size {
                break;
            }
            if word & DISCARD == 0 {
                records += 1;
            }
            pos = next;
        }
        if pos == cons {
            return Ok((0, 0.0));
        }
        // SAFETY: the span starts below the data's size and is at most that long, so
        // it lies in the data's two consecutive mappings; the records in it are
        // committed, and the producer leaves them alone until the consumer's position
        // moves past them, below.
        let span = unsafe {
            std::slice::from_raw_parts(
                self.data().add((cons & mask) as usize),
                (pos - cons) as usize,
            )
        };
        out.write_all(span)?;
        self.consumer_pos().store(pos, Ordering::Release);
        Ok((records, (pos - cons) as f64 / self.size as f64))
    }
}

impl Drop for SpoolRing {
    fn drop(&mut self) {
        // SAFETY: the two mappings made in new, not used after this.
        unsafe {
            libc::munmap(self.producer, self.producer_len);
            libc::munmap(self.consumer, self.page);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_framed_by_the_recorder_read_back_with_their_lengths() {
        let mut spool = Vec::new();
        write_record(&mut spool, &[1u8; 96]).unwrap();
        write_record(&mut spool, &[2u8; 5]).unwrap();
        write_record(&mut spool, &[]).unwrap();
        assert_eq!(spool.len(), (8 + 96) + (8 + 8) + 8);
        let mut r = &spool[..];
        let mut buf = Vec::new();
        assert_eq!(read_record(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, vec![1u8; 96]);
        assert_eq!(read_record(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, vec![2u8; 5]);
        assert_eq!(read_record(&mut r, &mut buf).unwrap(), Some(true));
        assert!(buf.is_empty());
        assert_eq!(read_record(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn a_discarded_record_is_skipped_by_its_flag_and_its_padded_length() {
        // As the kernel leaves them: a discarded record of 12 bytes (16 with padding),
        // then a committed one.
        let mut spool = Vec::new();
        spool.extend_from_slice(&(12u32 | DISCARD).to_ne_bytes());
        spool.extend_from_slice(&0u32.to_ne_bytes());
        spool.extend_from_slice(&[9u8; 16]);
        write_record(&mut spool, &[3u8; 8]).unwrap();
        let mut r = &spool[..];
        let mut buf = Vec::new();
        assert_eq!(read_record(&mut r, &mut buf).unwrap(), Some(false));
        assert_eq!(read_record(&mut r, &mut buf).unwrap(), Some(true));
        assert_eq!(buf, vec![3u8; 8]);
        assert_eq!(read_record(&mut r, &mut buf).unwrap(), None);
    }

    #[test]
    fn a_spool_cut_inside_a_record_is_an_error_not_a_short_record() {
        let mut spool = Vec::new();
        write_record(&mut spool, &[1u8; 96]).unwrap();
        spool.truncate(50);
        let mut r = &spool[..];
        let mut buf = Vec::new();
        assert!(read_record(&mut r, &mut buf).is_err());
    }
}
