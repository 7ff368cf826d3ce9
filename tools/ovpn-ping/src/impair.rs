//! `--impair PCT`: a deterministic lossy link inside the client (no netem needed): each UDP datagram in
//! either direction is dropped with probability PCT %, duplicated with PCT/2 %, or held back and delivered
//! after the next one (reordering) with PCT/2 %. It exercises the engine's reliability layer against the
//! real server's.

/// A tiny xorshift generator: the impairment must be reproducible, not secure.
pub struct Impair {
    pct: u32,
    state: u64,
    held_out: Option<Vec<u8>>,
    held_in: Option<Vec<u8>>,
}

/// What to do with one datagram.
enum Fate {
    Pass,
    Drop,
    Duplicate,
    Hold,
}

impl Impair {
    /// An impairment of `pct` percent (0 disables it).
    pub fn new(pct: u32, seed: u64) -> Self {
        Impair {
            pct: pct.min(50),
            state: seed | 1,
            held_out: None,
            held_in: None,
        }
    }

    fn roll(&mut self) -> u32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % 1000) as u32
    }

    fn fate(&mut self) -> Fate {
        if self.pct == 0 {
            return Fate::Pass;
        }
        let r = self.roll();
        let p = self.pct * 10;
        if r < p {
            Fate::Drop
        } else if r < p + p / 2 {
            Fate::Duplicate
        } else if r < 2 * p {
            Fate::Hold
        } else {
            Fate::Pass
        }
    }

    /// The datagrams to actually send for one outgoing datagram.
    pub fn outgoing(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        Self::apply(self.fate(), bytes, &mut self.held_out)
    }

    /// The datagrams to actually deliver for one received datagram.
    pub fn incoming(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        Self::apply(self.fate(), bytes, &mut self.held_in)
    }

    fn apply(fate: Fate, bytes: &[u8], held: &mut Option<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match fate {
            Fate::Drop => {}
            Fate::Pass => out.push(bytes.to_vec()),
            Fate::Duplicate => {
                out.push(bytes.to_vec());
                out.push(bytes.to_vec());
            }
            Fate::Hold => {
                // Deliver the previously held one now; this one waits for the next datagram.
                out.extend(held.take());
                *held = Some(bytes.to_vec());
                return out;
            }
        }
        out.extend(held.take());
        out
    }
}
