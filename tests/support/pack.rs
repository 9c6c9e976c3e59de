//! Raw git pack files, written byte by byte: for packs git would never build itself, such as a
//! delta bomb (a chain of deltas that each copy their base many times over).
//!
//! Pack format (gitformat-pack): `PACK`, version 2, object count; per object a type/size header,
//! for a REF_DELTA the 20-byte id of its base, then the zlib stream of its data; the SHA-1 of
//! everything before as a trailer. zlib streams are written with stored (uncompressed) blocks,
//! and SHA-1 is computed here, so nothing but the standard library is needed.

use git2::{ObjectType, Oid};
use std::io::Write as _;

use super::repo::FixtureRepo;

const OBJ_BLOB: u8 = 3;
const OBJ_REF_DELTA: u8 = 7;

/// Objects appended one by one, then `finish`ed into pack bytes.
#[derive(Default)]
pub struct PackBuilder {
    body: Vec<u8>,
    count: u32,
}

impl PackBuilder {
    pub fn new() -> PackBuilder {
        PackBuilder::default()
    }

    fn header(&mut self, kind: u8, size: usize) {
        let mut size = size;
        let mut byte = (kind << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size > 0 {
            self.body.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        self.body.push(byte);
        self.count += 1;
    }

    /// A whole blob.
    pub fn blob(&mut self, data: &[u8]) -> &mut Self {
        self.header(OBJ_BLOB, data.len());
        self.body.extend_from_slice(&zlib_stored(data));
        self
    }

    /// A delta (as built by [`Delta`]) against the object `base`.
    pub fn ref_delta(&mut self, base: Oid, delta: &[u8]) -> &mut Self {
        self.header(OBJ_REF_DELTA, delta.len());
        self.body.extend_from_slice(base.as_bytes());
        self.body.extend_from_slice(&zlib_stored(delta));
        self
    }

    pub fn finish(&self) -> Vec<u8> {
        let mut pack = b"PACK".to_vec();
        pack.extend_from_slice(&2u32.to_be_bytes());
        pack.extend_from_slice(&self.count.to_be_bytes());
        pack.extend_from_slice(&self.body);
        let sum = sha1(&pack);
        pack.extend_from_slice(&sum);
        pack
    }
}

/// A git delta: the sizes of base and result, then copy and insert instructions.
pub struct Delta {
    bytes: Vec<u8>,
}

fn varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl Delta {
    pub fn new(base_len: usize, result_len: usize) -> Delta {
        let mut bytes = Vec::new();
        varint(&mut bytes, base_len);
        varint(&mut bytes, result_len);
        Delta { bytes }
    }

    /// Copy `len` (1..=0xffffff) bytes of the base from `offset`.
    pub fn copy(&mut self, offset: u32, len: u32) -> &mut Self {
        assert!(len > 0 && len <= 0xff_ffff, "copy length out of range");
        let mut cmd = 0x80u8;
        let mut args = Vec::new();
        for (i, b) in offset.to_le_bytes().iter().enumerate() {
            if *b != 0 {
                cmd |= 1 << i;
                args.push(*b);
            }
        }
        for (i, b) in len.to_le_bytes()[..3].iter().enumerate() {
            if *b != 0 {
                cmd |= 0x10 << i;
                args.push(*b);
            }
        }
        self.bytes.push(cmd);
        self.bytes.extend_from_slice(&args);
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// `data` as a zlib stream of stored blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// SHA-1 (FIPS 180-4), for pack trailers.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// A delta bomb: a `base_len`-byte blob, then `levels` deltas, each copying the whole of the
/// previous object `fanout` times (the last one `fanout` times, its size `base_len *
/// fanout^levels`). Written into `repo` as one pack (indexed by libgit2, in this process, so
/// keep the sizes test-sized). Returns the ids of the base and of every delta, in chain order,
/// and the size of the pack in bytes.
pub fn write_delta_bomb(
    repo: &FixtureRepo,
    base_len: usize,
    fanout: usize,
    levels: usize,
) -> (Vec<Oid>, usize) {
    let mut current: Vec<u8> = (0..base_len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut ids = vec![Oid::hash_object(ObjectType::Blob, &current).unwrap()];
    let mut pack = PackBuilder::new();
    pack.blob(&current);
    for _ in 0..levels {
        let len = current.len();
        let mut delta = Delta::new(len, len * fanout);
        for _ in 0..fanout {
            delta.copy(0, len as u32);
        }
        let next = current.repeat(fanout);
        pack.ref_delta(*ids.last().unwrap(), delta.bytes());
        ids.push(Oid::hash_object(ObjectType::Blob, &next).unwrap());
        current = next;
    }
    let bytes = pack.finish();
    let odb = repo.git2().odb().unwrap();
    let mut w = odb.packwriter().unwrap();
    w.write_all(&bytes).unwrap();
    w.commit().unwrap();
    (ids, bytes.len())
}

#[test]
fn sha1_matches_known_answers() {
    let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(
        hex(sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    let long = vec![b'a'; 1000];
    // Cross-check with git's own hashing (a blob id is the SHA-1 of "blob N\0" + content).
    let mut framed = b"blob 1000\0".to_vec();
    framed.extend_from_slice(&long);
    assert_eq!(
        hex(sha1(&framed)),
        Oid::hash_object(ObjectType::Blob, &long)
            .unwrap()
            .to_string()
    );
}
