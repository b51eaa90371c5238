use super::*;

const BASE: &str = r#"[[ports]]
name = "a"
driver = "memory"
ipv4 = ["198.51.100.1/24"]
ipv6 = ["2001:db8:1::1/64"]

[[ports]]
name = "b"
driver = "memory"
ipv4 = ["203.0.113.1/24"]
"#;

fn err(text: &str) -> String {
    match Config::from_str(text, "t.toml").and_then(|c| c.check().map(|_| c)) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn examples_are_valid() {
    for f in ["router.toml", "host.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs")
            .join(f);
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        c.check().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn router_example_builds_the_expected_stack() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/router.toml");
    let c = Config::load(&path).unwrap();
    assert_eq!(c.ports.len(), 2);
    assert_eq!(c.ports[0].steering, Steering::All);
    assert_eq!(c.ports[0].ipv4[0].to_string(), "198.51.100.1/24");
    assert_eq!(c.ports[1].ipv6[0].to_string(), "2001:db8:2::1/64");
    assert_eq!(c.workers.cores, vec![1]);
    assert!(c.forwarding);
    let stack = c.check().unwrap();
    assert_eq!(stack.ports().len(), 2);
    let routes = c.routes();
    assert_eq!(routes[0].0.to_string(), "192.0.2.0/24");
    assert_eq!(
        routes[0].1,
        RouteTarget::Via("203.0.113.2".parse().unwrap())
    );
    assert_eq!(routes[2].1, RouteTarget::Unreachable);
}

#[test]
fn link_local_gateway_with_dev_is_accepted() {
    let text =
        format!("{BASE}[[routes]]\nprefix = \"2001:db8:9::/48\"\nvia = \"fe80::1\"\ndev = \"b\"\n");
    let c = Config::from_str(&text, "t.toml").unwrap();
    assert_eq!(
        c.routes[0].target,
        RouteSpec::ViaDev("fe80::1".parse().unwrap(), 1)
    );
    c.check().unwrap();
}

#[test]
fn defaults() {
    let c = Config::from_str(BASE, "t.toml").unwrap();
    assert_eq!(c.ports[0].interface, "a");
    assert_eq!(c.ports[0].queues, 1);
    assert_eq!(c.ports[0].mtu, 1500);
    assert_eq!(c.workers.cores, vec![0]);
    assert_eq!(c.workers.idle, IdlePolicy::BusyPoll);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.control_socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
    assert_eq!(c.metrics, None);
}

#[test]
fn broken_configs_name_line_and_key() {
    let cases: &[(&str, &str)] = &[
        // TOML syntax error.
        (
            "[[ports]]\nname = \"a\"\ndriver = \n",
            "t.toml:3: ports[0].driver: string values must be quoted, expected literal string",
        ),
        // Unknown top-level key.
        ("[sockets]\nmax-sockets = 0\n", "t.toml:1: sockets.max-sockets: must be at least 1"),
        ("[sockets]\nusers = [1]\n", "t.toml:2: sockets.users: unknown field `users`, expected one of `path`, `allow-users`, `allow-groups`, `max-sockets`, `buffer-memory-mib`"),
        ("[sockets]\nbuffer-memory-mib = 0\n", "t.toml:1: sockets.buffer-memory-mib: must be 1 to 4096 (MiB per application)"),
        ("colour = \"blue\"\n", "t.toml:1: colour: unknown field `colour`, expected one of `name`, `forwarding`, `log-level`, `control-socket`, `metrics`, `ports`, `routes`, `neighbors`, `workers`, `capture`, `sockets`, `tcp`"),
        // Unknown key in a port.
        (
            "[[ports]]\nname = \"a\"\ndriver = \"memory\"\nspeed = 10\n",
            "t.toml:4: ports[0].speed: unknown field `speed`, expected one of `name`, `driver`, `interface`, `queues`, `mtu`, `mac`, `steering`, `ipv4`, `ipv6`",
        ),
        // Bad driver.
        (
            "[[ports]]\nname = \"a\"\ndriver = \"dpdk\"\n",
            "t.toml:3: ports[0].driver: unknown variant `dpdk`, expected one of `afxdp`, `afpacket`, `tap`, `memory`",
        ),
        // Bad prefix length on an address.
        (
            &format!("{BASE}ipv6 = [\"2001:db8:2::1/64\"]\n[[ports]]\nname = \"c\"\ndriver = \"memory\"\nipv4 = [\"192.0.2.1/33\"]\n"),
            "t.toml:15: ports[2].ipv4[0]: \"192.0.2.1/33\": prefix length 33 is longer than 32",
        ),
        // Address that is not one.
        (
            "[[ports]]\nname = \"a\"\ndriver = \"memory\"\nipv4 = [\"198.51.100.x/24\"]\n",
            "t.toml:4: ports[0].ipv4[0]: \"198.51.100.x/24\": cannot parse \"198.51.100.x/24\" as ADDRESS/LENGTH",
        ),
        // Route prefix with host bits.
        (
            &format!("{BASE}[[routes]]\nprefix = \"192.0.2.1/24\"\nvia = \"203.0.113.2\"\n"),
            "t.toml:12: routes[0].prefix: \"192.0.2.1/24\": prefix has host bits set beyond its length",
        ),
        // Unknown port in a route.
        (
            &format!("{BASE}[[routes]]\nprefix = \"192.0.2.0/24\"\ndev = \"c\"\n"),
            "t.toml:13: routes[0].dev: no port named \"c\"",
        ),
        // Gateway off-link.
        (
            &format!("{BASE}[[routes]]\nprefix = \"192.0.2.0/24\"\nvia = \"10.1.1.1\"\n"),
            "t.toml:13: routes[0].via: gateway 10.1.1.1 is not on a connected network of any port",
        ),
        // Gateway on the wrong port.
        (
            &format!("{BASE}[[routes]]\nprefix = \"192.0.2.0/24\"\nvia = \"203.0.113.2\"\ndev = \"a\"\n"),
            "t.toml:13: routes[0].via: gateway 203.0.113.2 is not on a connected network of port a",
        ),
        // Gateway of the other family.
        (
            &format!("{BASE}[[routes]]\nprefix = \"2001:db8:9::/48\"\nvia = \"203.0.113.2\"\n"),
            "t.toml:13: routes[0].via: gateway 203.0.113.2 is not of the family of 2001:db8:9::/48",
        ),
        // A link-local gateway without a port.
        (
            &format!("{BASE}[[routes]]\nprefix = \"2001:db8:9::/48\"\nvia = \"fe80::1\"\n"),
            "t.toml:13: routes[0].via: link-local gateway fe80::1 needs dev = PORT",
        ),
        // A route that goes nowhere.
        (
            &format!("{BASE}[[routes]]\nprefix = \"192.0.2.0/24\"\n"),
            "t.toml:12: routes[0]: a route needs via, dev, blackhole = true or unreachable = true",
        ),
        // Duplicate port names.
        (
            &format!("{BASE}[[ports]]\nname = \"a\"\ndriver = \"memory\"\n"),
            "t.toml:12: ports[2].name: port \"a\" is defined twice",
        ),
        // Duplicate addresses.
        (
            &format!("{BASE}[[ports]]\nname = \"c\"\ndriver = \"memory\"\nipv4 = [\"203.0.113.1/24\"]\n"),
            "t.toml:14: ports[2].ipv4[0]: 203.0.113.1 is already an address of port b",
        ),
        // A neighbor on an unknown port.
        (
            &format!("{BASE}[[neighbors]]\nport = \"z\"\naddress = \"203.0.113.2\"\nmac = \"02:00:00:00:00:09\"\n"),
            "t.toml:12: neighbors[0].port: no port named \"z\"",
        ),
        // A neighbor with a group MAC.
        (
            &format!("{BASE}[[neighbors]]\nport = \"b\"\naddress = \"203.0.113.2\"\nmac = \"01:00:5e:00:00:01\"\n"),
            "t.toml:14: neighbors[0].mac: 01:00:5e:00:00:01 is not a unicast MAC address",
        ),
        // Empty worker list.
        (
            &format!("{BASE}[workers]\ncores = []\n"),
            "t.toml:12: workers.cores: at least one worker core is needed",
        ),
        // A core listed twice.
        (
            &format!("{BASE}[workers]\ncores = [1, 2, 1]\n"),
            "t.toml:12: workers.cores: core 1 is listed twice",
        ),
        // Bad idle policy.
        (
            &format!("{BASE}[workers]\ncores = [1]\nidle = \"spin\"\n"),
            "t.toml:13: workers.idle: unknown variant `spin`, expected `busy-poll` or `poll-then-sleep`",
        ),
        // empty-polls with busy-poll.
        (
            &format!("{BASE}[workers]\ncores = [1]\nempty-polls = 5\n"),
            "t.toml:13: workers.empty-polls: empty-polls applies to idle = \"poll-then-sleep\" only",
        ),
        // Steering on a driver without XDP.
        (
            "[[ports]]\nname = \"a\"\ndriver = \"tap\"\nsteering = \"host\"\n",
            "t.toml:4: ports[0].steering: steering applies to the afxdp driver only, not tap",
        ),
        // Bad MAC override.
        (
            "[[ports]]\nname = \"a\"\ndriver = \"memory\"\nmac = \"02:00:00:00:00\"\n",
            "t.toml:4: ports[0].mac: \"02:00:00:00:00\": not a MAC address (xx:xx:xx:xx:xx:xx)",
        ),
        // MTU the stack refuses (checked by building the stack, as `run` does).
        (
            "[[ports]]\nname = \"a\"\ndriver = \"memory\"\nmtu = 60\n",
            "t.toml:2: ports[0]: port a: MTU 60 is below 68 (RFC 791)",
        ),
        // Capture on an unknown port.
        (
            &format!("{BASE}[capture]\nc = \"/tmp/c.pcap\"\n"),
            "t.toml:12: capture.c: no port named \"c\"",
        ),
        // Bad metrics address.
        (
            &format!("metrics = \"localhost\"\n{BASE}"),
            "t.toml:1: metrics: \"localhost\": not an ADDRESS:PORT to listen on",
        ),
        // Bad log level.
        (
            "log-level = \"loud\"\n",
            "t.toml:1: log-level: unknown variant `loud`, expected one of `error`, `warn`, `info`, `debug`, `trace`",
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = err(text);
        if got != *want {
            failures.push(format!("want: {want}\n got: {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tcp_section_sets_the_shards_tcp() {
    let c = Config::from_str(BASE, "t.toml").unwrap();
    assert_eq!(c.stack_config().tcp, TcpConfig::default());
    let text = format!(
        "{BASE}\n[tcp]\nmax-sockets = 65536\nrx-buffer = 1048576\ntime-wait-ms = 5000\ncongestion = \"newreno\"\nnodelay = true\ndelayed-ack-ms = 0\nkeepalive-s = 30\nsack = false\n"
    );
    let c = Config::from_str(&text, "t.toml").unwrap();
    let t = c.stack_config().tcp;
    assert_eq!(t.max_sockets, 65536);
    assert_eq!(t.rx_buffer, 1 << 20);
    assert_eq!(t.tx_buffer, TcpConfig::default().tx_buffer);
    assert_eq!(t.time_wait, stack::Duration::from_secs(5));
    assert_eq!(t.congestion, stack::tcp::CongestionControl::NewReno);
    assert!(t.nodelay && !t.sack);
    assert_eq!(t.delayed_ack, stack::Duration::from_millis(0));
    assert_eq!(t.keepalive, Some(stack::Duration::from_secs(30)));
    assert!(c.summary().contains("tcp: 65536 sockets per shard"));
}

#[test]
fn bad_tcp_values_name_line_and_key() {
    let line = BASE.lines().count() + 3;
    for (body, key, what) in [
        ("delayed-ack-ms = 500", "tcp.delayed-ack-ms", "out of range"),
        ("rx-buffer = 10", "tcp.rx-buffer", "out of range"),
        ("congestion = \"bbr\"", "tcp.congestion", "not \"cubic\""),
        ("min-rto-ms = 5000", "tcp.min-rto-ms", "does not hold"),
    ] {
        let e = err(&format!("{BASE}\n[tcp]\n{body}\n"));
        assert!(
            e.contains(&format!(":{line}: {key}:")) && e.contains(what),
            "{body}: {e}"
        );
    }
    assert!(err(&format!("{BASE}\n[tcp]\nwhat = 1\n")).contains("what"));
}

#[test]
fn realtime_priority_is_checked() {
    let text = format!("{BASE}\n[workers]\ncores = [0]\nrealtime-priority = 10\n");
    let c = Config::from_str(&text, "t.toml").unwrap();
    assert_eq!(c.workers.realtime_priority, Some(10));
    assert!(c.summary().contains("SCHED_FIFO priority 10"));
    let e = err(&format!(
        "{BASE}\n[workers]\ncores = [0]\nrealtime-priority = 100\n"
    ));
    assert!(
        e.contains("workers.realtime-priority") && e.contains("1-99"),
        "{e}"
    );
}
