//! Client private keys from PEM files, as Python's `ssl.SSLContext.load_cert_chain` reads
//! them: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`), and
//! the encrypted forms with a password: PKCS#8 PBES2 (`ENCRYPTED PRIVATE KEY`, what
//! OpenSSL 3 and `cryptography` write) and the legacy OpenSSL PEM encryption
//! (`Proc-Type: 4,ENCRYPTED` + `DEK-Info`, AES-CBC or DES-EDE3-CBC).

use std::path::Path;

use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

/// One PEM block: label, RFC 1421 headers (only legacy encrypted keys have them), DER.
#[derive(Debug)]
struct Block {
    label: String,
    headers: Vec<(String, String)>,
    der: Vec<u8>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line.trim().strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut headers = Vec::new();
        let mut body = String::new();
        for line in lines.by_ref() {
            let line = line.trim();
            if line == end {
                break;
            }
            match line.split_once(':') {
                Some((k, v)) if body.is_empty() => headers.push((k.trim().to_string(), v.trim().to_string())),
                _ => body.push_str(line),
            }
        }
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
            out.push(Block { label: label.to_string(), headers, der });
        }
    }
    out
}

/// The first private key in the PEM file at `path`, decrypted with `password` if needed.
/// Errors are plain messages; the caller adds the path.
pub fn load_private_key(path: &Path, password: Option<&[u8]>) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    for block in blocks(&text) {
        return match block.label.as_str() {
            "PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(block.der))),
            "RSA PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(legacy(&block, password)?))),
            "EC PRIVATE KEY" => Ok(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(legacy(&block, password)?))),
            "ENCRYPTED PRIVATE KEY" => {
                let password = password.ok_or_else(no_password)?;
                let info = pkcs8::EncryptedPrivateKeyInfo::try_from(block.der.as_slice())
                    .map_err(|e| format!("bad encrypted PKCS#8 key: {e}"))?;
                let doc = info
                    .decrypt(password)
                    .map_err(|e| format!("cannot decrypt the private key (wrong password or unsupported cipher: {e})"))?;
                Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec())))
            }
            _ => continue,
        };
    }
    Err("no private key found (PEM 'PRIVATE KEY', 'RSA PRIVATE KEY' or 'EC PRIVATE KEY' expected)".into())
}

fn no_password() -> String {
    "the private key is encrypted and no password was given (sslopt 'password')".into()
}

/// A PKCS#1 / SEC1 body, decrypted when the block carries `Proc-Type: 4,ENCRYPTED`.
fn legacy(block: &Block, password: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let header = |name: &str| block.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    if !header("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED")) {
        return Ok(block.der.clone());
    }
    let password = password.ok_or_else(no_password)?;
    let dek = header("DEK-Info").ok_or("encrypted key without DEK-Info")?;
    let (cipher, iv_hex) = dek.split_once(',').ok_or("bad DEK-Info")?;
    let iv = hex(iv_hex.trim()).ok_or("bad DEK-Info IV")?;
    decrypt_legacy(cipher.trim(), password, &iv, &block.der)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// OpenSSL's EVP_BytesToKey with MD5, one iteration, the IV's first 8 bytes as salt.
fn bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while key.len() < len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(password);
        h.update(salt);
        prev = h.finalize().to_vec();
        key.extend_from_slice(&prev);
    }
    key.truncate(len);
    key
}

/// Decrypts a legacy PEM body with the DEK-Info cipher.
pub fn decrypt_legacy(cipher: &str, password: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    if iv.len() < 8 {
        return Err("bad DEK-Info IV".into());
    }
    let key_len = match cipher.to_ascii_uppercase().as_str() {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        "DES-EDE3-CBC" => 24,
        other => return Err(format!("unsupported PEM encryption {other} (AES-CBC or DES-EDE3-CBC expected)")),
    };
    let key = bytes_to_key(password, &iv[..8], key_len);
    let bad = |_| "cannot decrypt the private key (wrong password?)".to_string();
    let out = match key_len {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, iv).map_err(|e| e.to_string())?.decrypt_padded_vec_mut::<Pkcs7>(data).map_err(bad),
        24 if cipher.eq_ignore_ascii_case("AES-192-CBC") => {
            cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, iv).map_err(|e| e.to_string())?.decrypt_padded_vec_mut::<Pkcs7>(data).map_err(bad)
        }
        24 => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, iv).map_err(|e| e.to_string())?.decrypt_padded_vec_mut::<Pkcs7>(data).map_err(bad),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv).map_err(|e| e.to_string())?.decrypt_padded_vec_mut::<Pkcs7>(data).map_err(bad),
    }?;
    // A wrong password can still leave valid padding: the result must be a DER SEQUENCE.
    if out.first() != Some(&0x30) {
        return Err("cannot decrypt the private key (wrong password?)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_with_headers() {
        let text = "junk\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAEC\n-----END RSA PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
        let b = blocks(text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label, "RSA PRIVATE KEY");
        assert_eq!(b[0].headers[1], ("DEK-Info".to_string(), "AES-128-CBC,00112233445566778899AABBCCDDEEFF".to_string()));
        assert_eq!(b[0].der, vec![0, 1, 2]);
        assert_eq!(b[1].der, vec![0x30, 3, 2, 1, 0]);
    }

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // `openssl enc -aes-128-cbc -pass pass:secret -S 0102030405060708 -P -md md5`
        let key = bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 16);
        let first = Md5::digest([b"secret".as_slice(), &[1, 2, 3, 4, 5, 6, 7, 8]].concat());
        assert_eq!(key, first.to_vec());
        let long = bytes_to_key(b"pw", b"saltsalt", 32);
        let d1 = Md5::digest(b"pwsaltsalt");
        let d2 = Md5::digest([d1.as_slice(), b"pwsaltsalt"].concat());
        assert_eq!(long, [d1.as_slice(), d2.as_slice()].concat());
    }

    #[test]
    fn legacy_round_trip() {
        use cbc::cipher::BlockEncryptMut;
        let iv = [7u8; 16];
        let key = bytes_to_key(b"pw", &iv[..8], 32);
        let plain = b"\x30\x03\x02\x01\x00".to_vec();
        let enc = cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &iv).unwrap().encrypt_padded_vec_mut::<Pkcs7>(&plain);
        assert_eq!(decrypt_legacy("AES-256-CBC", b"pw", &iv, &enc).unwrap(), plain);
        assert!(decrypt_legacy("AES-256-CBC", b"wrong", &iv, &enc).is_err());
        assert!(decrypt_legacy("BF-CBC", b"pw", &iv, &enc).unwrap_err().contains("unsupported"));
        // DES-EDE3-CBC: 8-byte IV, 24-byte key.
        let iv8 = [3u8; 8];
        let key = bytes_to_key(b"pw", &iv8, 24);
        let enc = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&key, &iv8).unwrap().encrypt_padded_vec_mut::<Pkcs7>(&plain);
        assert_eq!(decrypt_legacy("DES-EDE3-CBC", b"pw", &iv8, &enc).unwrap(), plain);
    }
}
