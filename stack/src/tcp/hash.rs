//! SipHash-2-4: the keyed hash behind initial sequence numbers (RFC 6528) and
//! ephemeral port selection (RFC 6056), keyed from the stack's seed.

/// A SipHash-2-4 key.
#[derive(Debug, Clone, Copy)]
pub struct SipKey(pub u64, pub u64);

impl SipKey {
    /// A key derived from a seed (SplitMix64 twice).
    pub fn from_seed(seed: u64) -> Self {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        SipKey(next(), next())
    }

    /// SipHash-2-4 of `data`.
    pub fn hash(&self, data: &[u8]) -> u64 {
        let mut v = [
            self.0 ^ 0x736f_6d65_7073_6575,
            self.1 ^ 0x646f_7261_6e64_6f6d,
            self.0 ^ 0x6c79_6765_6e65_7261,
            self.1 ^ 0x7465_6462_7974_6573,
        ];
        fn round(v: &mut [u64; 4]) {
            v[0] = v[0].wrapping_add(v[1]);
            v[1] = v[1].rotate_left(13) ^ v[0];
            v[0] = v[0].rotate_left(32);
            v[2] = v[2].wrapping_add(v[3]);
            v[3] = v[3].rotate_left(16) ^ v[2];
            v[0] = v[0].wrapping_add(v[3]);
            v[3] = v[3].rotate_left(21) ^ v[0];
            v[2] = v[2].wrapping_add(v[1]);
            v[1] = v[1].rotate_left(17) ^ v[2];
            v[2] = v[2].rotate_left(32);
        }
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let m = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            v[3] ^= m;
            round(&mut v);
            round(&mut v);
            v[0] ^= m;
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        last[7] = data.len() as u8;
        let m = u64::from_le_bytes(last);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
        v[2] ^= 0xff;
        for _ in 0..4 {
            round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vector() {
        // The SipHash paper's test key 00..0f; message 00..0e gives a129ca6149be45e5.
        let key = SipKey(
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        );
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(key.hash(&msg), 0xa129_ca61_49be_45e5);
        assert_eq!(key.hash(&[]), 0x726f_db47_dd0e_0e31);
    }
}
