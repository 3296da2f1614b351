//! DNS answers on their way to the board: an address record that points at the
//! host's loopback (the lab's services listen there) is rewritten to the
//! gateway, so the board's lwIP sends to the private network (where the
//! user-mode network forwards by port) rather than to its own loopback. QEMU's
//! user networking gives the host's loopback the gateway address the same way.

use std::net::Ipv4Addr;

/// Skips the (possibly compressed) name at `at`; the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// Rewrites every A record of `msg` in 127.0.0.0/8 to `gateway`, in place.
/// Returns how many it rewrote; a message it cannot parse is left as it is.
pub fn loopback_answers_to(msg: &mut [u8], gateway: Ipv4Addr) -> usize {
    let be16 = |m: &[u8], at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *m.get(at)?,
            *m.get(at + 1)?,
        ])))
    };
    let (Some(questions), Some(answers)) = (be16(msg, 4), be16(msg, 6)) else {
        return 0;
    };
    let mut at = 12;
    for _ in 0..questions {
        match skip_name(msg, at) {
            Some(next) => at = next + 4,
            None => return 0,
        }
    }
    let mut rewritten = 0;
    for _ in 0..answers {
        let Some(next) = skip_name(msg, at) else {
            return rewritten;
        };
        let (Some(kind), Some(class), Some(len)) =
            (be16(msg, next), be16(msg, next + 2), be16(msg, next + 8))
        else {
            return rewritten;
        };
        let data = next + 10;
        if data + len > msg.len() {
            return rewritten;
        }
        if kind == 1 && class == 1 && len == 4 && msg[data] == 127 {
            msg[data..data + 4].copy_from_slice(&gateway.octets());
            rewritten += 1;
        }
        at = data + len;
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for `name` with A records `addrs` (the first answer's name
    /// compressed to the question's).
    pub(crate) fn response(name: &str, addrs: &[[u8; 4]]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
        m.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        for a in addrs {
            m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            m.extend_from_slice(a);
        }
        m
    }

    #[test]
    fn loopback_a_records_become_the_gateway_and_others_stay() {
        let gateway = Ipv4Addr::new(10, 0, 2, 2);
        let mut m = response("broker.lab", &[[127, 0, 0, 1], [192, 0, 2, 7]]);
        assert_eq!(loopback_answers_to(&mut m, gateway), 1);
        assert_eq!(
            m,
            response("broker.lab", &[[10, 0, 2, 2], [192, 0, 2, 7]]),
            "only the loopback record changed"
        );
        let mut cut = response("broker.lab", &[[127, 0, 0, 1]]);
        cut.truncate(cut.len() - 2);
        let before = cut.clone();
        assert_eq!(loopback_answers_to(&mut cut, gateway), 0);
        assert_eq!(cut, before);
    }
}
