use super::*;
use crate::server::config::tests::settings;

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn subnet_hands_out_consecutive_addresses_and_ipv6_at_the_same_index() {
    let mut p = AddressPool::new(&settings(
        "server 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:8::/64\n",
    ));
    assert_eq!(p.capacity(), 253);
    let l1 = p.allocate("alice", 1).unwrap().lease();
    let l2 = p.allocate("bob", 2).unwrap().lease();
    assert_eq!((l1.ipv4, l1.ipv4_peer), (a("10.8.0.2"), None));
    assert_eq!(l2.ipv4, a("10.8.0.3"));
    assert_eq!(l2.ipv6, Some("fd00:8::1001".parse().unwrap()));
    assert_eq!(p.owner_of(a("10.8.0.3")), Some(2));
    assert_eq!(p.owner_of(a("10.8.0.9")), None);
    assert_eq!(p.allocate("carol", 2), Err(PoolError::AlreadyLeased));
    assert_eq!(p.release(1), Some(l1));
    assert_eq!(p.release(1), None);
    assert_eq!(p.in_use(), 1);
}

#[test]
fn net30_gives_a_slash_30_per_client() {
    let mut p = AddressPool::new(&settings("server 10.8.0.0 255.255.255.0\ntopology net30\n"));
    assert_eq!(p.capacity(), 63);
    let l = p.allocate("alice", 1).unwrap().lease();
    assert_eq!((l.ipv4, l.ipv4_peer), (a("10.8.0.6"), Some(a("10.8.0.5"))));
    let l = p.allocate("bob", 2).unwrap().lease();
    assert_eq!((l.ipv4, l.ipv4_peer), (a("10.8.0.10"), Some(a("10.8.0.9"))));
    assert_eq!(p.owner_of(a("10.8.0.10")), Some(2));
}

#[test]
fn the_same_common_name_gets_its_address_back() {
    let mut p = AddressPool::new(&settings("server 10.8.0.0 255.255.255.0\n"));
    let alice = p.allocate("alice", 1).unwrap().lease();
    let bob = p.allocate("bob", 2).unwrap().lease();
    p.release(1);
    p.release(2);
    // A newcomer takes a never-used slot, not a remembered one.
    assert_eq!(p.allocate("carol", 3).unwrap().lease().ipv4, a("10.8.0.4"));
    assert_eq!(p.allocate("bob", 4).unwrap().lease(), bob);
    assert_eq!(p.allocate("alice", 5).unwrap().lease(), alice);
}

#[test]
fn remembered_slots_are_reused_least_recently_released_first() {
    let mut p = AddressPool::new(&settings(
        "server 10.8.0.0 255.255.255.0\nifconfig-pool 10.8.0.10 10.8.0.12\n",
    ));
    assert_eq!(p.capacity(), 3);
    for (i, cn) in ["a", "b", "c"].iter().enumerate() {
        p.allocate(cn, i as u64).unwrap();
    }
    assert_eq!(p.allocate("d", 9), Err(PoolError::Exhausted));
    p.release(1); // b first
    p.release(0); // then a
                  // d evicts b's memory (released longest ago), e then a's.
    assert_eq!(p.allocate("d", 10).unwrap().lease().ipv4, a("10.8.0.11"));
    assert_eq!(p.allocate("e", 11).unwrap().lease().ipv4, a("10.8.0.10"));
}

#[test]
fn without_duplicate_cn_a_second_connection_takes_over() {
    let mut p = AddressPool::new(&settings("server 10.8.0.0 255.255.255.0\n"));
    let first = p.allocate("alice", 1).unwrap().lease();
    assert_eq!(
        p.allocate("alice", 2),
        Ok(Allocation::TakenOver {
            lease: first,
            previous: 1
        })
    );
    assert_eq!(p.in_use(), 1);
    assert_eq!(p.lease_of(1), None);
    assert_eq!(p.release(1), None);
    assert_eq!(p.lease_of(2), Some(first));
}

#[test]
fn with_duplicate_cn_each_connection_gets_an_address() {
    let mut p = AddressPool::new(&settings("server 10.8.0.0 255.255.255.0\nduplicate-cn\n"));
    let one = p.allocate("shared", 1).unwrap();
    let two = p.allocate("shared", 2).unwrap();
    assert!(matches!(
        (one, two),
        (Allocation::New(_), Allocation::New(_))
    ));
    assert_ne!(one.lease().ipv4, two.lease().ipv4);
}

#[test]
fn bounded_by_max_clients_and_nopool() {
    let mut p = AddressPool::new(&settings("server 10.8.0.0 255.255.255.0\nmax-clients 2\n"));
    p.allocate("a", 1).unwrap();
    p.allocate("b", 2).unwrap();
    assert_eq!(p.allocate("c", 3), Err(PoolError::MaxClients));
    p.release(1);
    assert!(p.allocate("c", 3).is_ok());
    let mut p = AddressPool::new(&settings("server 10.8.0.0 255.255.255.0 nopool\n"));
    assert_eq!(p.allocate("a", 1), Err(PoolError::NoPool));
    // A /8 keeps at most MAX_POOL_SLOTS slots.
    let p = AddressPool::new(&settings("server 10.0.0.0 255.0.0.0\n"));
    assert_eq!(p.capacity(), MAX_POOL_SLOTS);
}
