//! The TLS 1.0/1.1 PRF (RFC 2246 §5) and OpenVPN's legacy key-method-2 derivation of the data-channel key2
//! (wire reference §5.6 (b)). Used only when the server does not negotiate TLS-EKM.

use super::key2::KEY2_LEN;
use crate::wire::SessionId;
use hmac::{Hmac, Mac};
use md5::Md5;
use zeroize::Zeroize;

/// Seed label of the master secret.
pub const MASTER_SECRET_LABEL: &[u8] = b"OpenVPN master secret";
/// Seed label of the key expansion.
pub const KEY_EXPANSION_LABEL: &[u8] = b"OpenVPN key expansion";

/// `PRF(secret, seed) = P_MD5(S1, seed) XOR P_SHA1(S2, seed)`, where S1 and S2 are the first and last
/// ⌈len/2⌉ bytes of the secret (they share a byte when the length is odd). `seed` is the concatenation of
/// the given parts. Fills `out` completely.
pub fn tls1_prf(secret: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let half = secret.len().div_ceil(2);
    let s1 = secret.get(..half).unwrap_or(secret);
    let s2 = secret.get(secret.len() - half..).unwrap_or(secret);
    out.fill(0);
    p_md5_xor(s1, seed, out);
    p_sha1_xor(s2, seed, out);
}

fn xor_into(out: &mut [u8], block: &[u8]) {
    for (o, b) in out.iter_mut().zip(block) {
        *o ^= b;
    }
}

/// XORs P_MD5(secret, seed) into `out`.
fn p_md5_xor(secret: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    // HMAC accepts keys of any length, so construction cannot fail.
    let Ok(keyed) = Hmac::<Md5>::new_from_slice(secret) else {
        return;
    };
    let mut a = {
        let mut mac = keyed.clone();
        seed.iter().for_each(|p| mac.update(p));
        mac.finalize().into_bytes()
    };
    for chunk in out.chunks_mut(16) {
        let mut mac = keyed.clone();
        mac.update(&a);
        seed.iter().for_each(|p| mac.update(p));
        xor_into(chunk, &mac.finalize().into_bytes());
        let mut next = keyed.clone();
        next.update(&a);
        a = next.finalize().into_bytes();
    }
}

/// XORs P_SHA1(secret, seed) into `out`.
fn p_sha1_xor(secret: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mut a = {
        let mut ctx = hmac::Context::with_key(&key);
        seed.iter().for_each(|p| ctx.update(p));
        ctx.sign()
    };
    for chunk in out.chunks_mut(20) {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        seed.iter().for_each(|p| ctx.update(p));
        xor_into(chunk, ctx.sign().as_ref());
        a = hmac::sign(&key, a.as_ref());
    }
}

/// The random contributions of one side's key-method-2 message (§5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Km2Randoms {
    /// random1 (32 bytes), used for the master secret.
    pub random1: [u8; 32],
    /// random2 (32 bytes), used for the key expansion.
    pub random2: [u8; 32],
}

/// Derives the 256-byte data-channel key2 the legacy way:
///
/// ```text
/// master = PRF(pre_master, "OpenVPN master secret" || c.random1 || s.random1, 48)
/// key2   = PRF(master, "OpenVPN key expansion" || c.random2 || s.random2 || c_sid || s_sid, 256)
/// ```
///
/// "client"/"server" are the TLS roles; the session ids are the control-channel ids (§2.1).
pub fn derive_key2_legacy(
    pre_master: &[u8; 48],
    client: &Km2Randoms,
    server: &Km2Randoms,
    client_sid: &SessionId,
    server_sid: &SessionId,
) -> zeroize::Zeroizing<[u8; KEY2_LEN]> {
    let mut master = [0u8; 48];
    tls1_prf(
        pre_master,
        &[MASTER_SECRET_LABEL, &client.random1, &server.random1],
        &mut master,
    );
    let mut key2 = zeroize::Zeroizing::new([0u8; KEY2_LEN]);
    tls1_prf(
        &master,
        &[
            KEY_EXPANSION_LABEL,
            &client.random2,
            &server.random2,
            client_sid.as_bytes(),
            server_sid.as_bytes(),
        ],
        &mut *key2,
    );
    master.zeroize();
    key2
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::test_util::hex;

    const LOREM: &[u8] = b"Lorem ipsum dolor sit amet, consectetur adipisici elit, sed eiusmod tempor incidunt ut labore et dolore magna aliqua.";

    #[test]
    fn t1_prf_vectors() {
        let mut out = [0u8; 32];
        tls1_prf(
            LOREM,
            &[b"Quis aute iure reprehenderit in voluptate velit esse cillum dolore"],
            &mut out,
        );
        assert_eq!(
            out[..],
            hex("d98c8518c85e946927916acfc2d592fbb1567e4b4b1459e6a904ac2ddab72d67")[..]
        );
        let mut out = [0u8; 8];
        tls1_prf(b"tls1-prf-test-secret", &[b"tls1-prf-test"], &mut out);
        assert_eq!(out[..], hex("7144fe2540737595")[..]);
        // Split seeds give the same result as one seed.
        let mut split = [0u8; 8];
        tls1_prf(
            b"tls1-prf-test-secret",
            &[b"tls1-", b"prf-test"],
            &mut split,
        );
        assert_eq!(split, out);
    }

    #[test]
    fn t1_hmac_sha1_vector() {
        let mut key = [0u8; 20];
        key[0] = 0x0b;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(LOREM);
        ctx.update(LOREM);
        assert_eq!(
            ctx.sign().as_ref(),
            &hex("58ea5af04294e917ed84b9f0833023ae8ba77eb8")[..]
        );
    }

    #[test]
    fn l2_end_to_end_key_derivation() {
        let arr32 = |s: &str| -> [u8; 32] { hex(s).try_into().unwrap() };
        let pre_master: [u8; 48] = hex("713bfd3c5879f0d489b10307725c197b18988b8c232ff805682dc18e8f7826265133f8de64dade0e6d34015a4da412a8").try_into().unwrap();
        let client = Km2Randoms {
            random1: arr32("b5d67795c6bf3956ce395471d89b1f94825ccde0b30684b2a886792c8df7b74b"),
            random2: arr32("6f9cfc8f96f80639d6ba53ca837eac1fbcb48d090f4d56717329609de1095577"),
        };
        let server = Km2Randoms {
            random1: arr32("15182d07933f9a2837f5e0244518653e3b9ef0571c8999c160148f33bde60de7"),
            random2: arr32("34e2b07e4b221bc041359adb05632867a32c5c0632f34dae4793b60b30ff0017"),
        };
        let csid = SessionId(hex("f111fd998c729b79").try_into().unwrap());
        let ssid = SessionId(hex("2cd2d9afd72e35e3").try_into().unwrap());

        let mut master = [0u8; 48];
        tls1_prf(
            &pre_master,
            &[MASTER_SECRET_LABEL, &client.random1, &server.random1],
            &mut master,
        );
        assert_eq!(master[..], hex("767bb220c0dbf6191d6dc6812ac7cc0f2099e826920c7deb22fe9219cadcb43ee62668f8d54c61ad889e908e0677bd7a")[..]);

        let key2 = derive_key2_legacy(&pre_master, &client, &server, &csid, &ssid);
        assert_eq!(key2[..], hex(L2_KEY2)[..]);
    }

    pub(crate) const L2_KEY2: &str = "e73ed0250a60b62babec0add9545be2afa0c8ef8d5e970fd3b3955ccec86094a7f648a033f7c13b4ac51716e6c34c5c045c4fdfb8e2efc1f7293fba9bc92a4b9ab2237a843b714125284e800966d5351a29c71a0d083e22fc7e4393a3e5ce92f8cb6333cf407fc0776f47465dd4f7d6f1970fde953d5d87848a08af9016dc6634dea4aad14f479a37a741efac499fdde8ee467a5b3eff8a2d2cee090195cef025b1708599bdab35628ea7e9c7368bc98904e570422fa7c913a4d8ce40585ff69f0205ab7d7dabf3538499b153f3352a382d3061fa78fc668838c0e7efd87db239fd1c4d6406c8d70b1aa56afe2c6bdbc44e56b85942c1c18ab3a16cc79675d8f";
}
