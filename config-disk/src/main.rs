//! `config-disk`: makes and checks oxvpn config disks on the host.
//!
//! Layer: host tool (std). It parses with the same `openvpn::config` parser the image runs, reads the files a
//! config references by path (relative to the config's folder), writes the all-inline config the image
//! accepts, and pads it into the MirageVPN disk format (`config_disk::pad`).

mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use openvpn::config::{
    self, AuthUserPass, ConfigError, FileErrorKind, FileResolver, InlineOnly, Parsed, Resolved,
};

const USAGE: &str = "\
config-disk: make and check oxvpn config disks (raw OpenVPN config text, NUL-padded to 512-byte sectors)

USAGE:
    config-disk make CONFIG.ovpn -o DISK.img [--auth-user-pass FILE]
    config-disk check DISK.img|CONFIG.ovpn [--auth-user-pass FILE]
    config-disk --help

make    Parses CONFIG with the image's parser, inlines every file it references by path (relative to the
        config's folder: ca, cert, key, extra-certs, tls-auth, tls-crypt, tls-crypt-v2, crl-verify and the
        auth-user-pass credentials), refuses what the image cannot use with the message the image would
        print, and writes DISK: the normalised all-inline config, NUL-padded to a multiple of 512 bytes.
check   Prints a summary (remotes, protocol, ciphers, control-channel protection, authentication) of a
        disk made by `make`, or of a .ovpn file, or the error that refuses it.

OPTIONS:
    -o, --output DISK          where `make` writes the disk image
    --auth-user-pass FILE      credentials (username line, password line) for a bare `auth-user-pass`,
                               which would otherwise ask on a console the image does not have

Warnings (directives that only matter to an OpenVPN process on a host, obsolete ones) go to stderr.

EXIT CODES:
    0    success
    1    the config is refused (the message names the line, the directive and the reason)
    2    usage error
    3    I/O error (a file could not be read or the disk could not be written)
    4    the disk does not hold config text (empty, binary, not UTF-8, larger than 1 MiB)
";

const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_IO: u8 = 3;
const EXIT_DISK: u8 = 4;

/// Largest file accepted for an inlined key or certificate.
const MAX_FILE_LEN: u64 = 1 << 20;

/// Reads referenced files relative to the config's folder and remembers the last one, for messages.
struct FsResolver {
    dir: PathBuf,
    credentials: Option<PathBuf>,
    last: Option<PathBuf>,
}

impl FileResolver for FsResolver {
    fn read(&mut self, path: &str) -> Result<Resolved, FileErrorKind> {
        let full = self.dir.join(path);
        self.last = Some(full.clone());
        let meta = std::fs::metadata(&full).map_err(|_| FileErrorKind::NotFound)?;
        if meta.len() > MAX_FILE_LEN {
            return Err(FileErrorKind::TooLarge);
        }
        let bytes = std::fs::read(&full).map_err(|_| FileErrorKind::Unreadable)?;
        let text = config::decode(&bytes).map_err(|_| FileErrorKind::NotText)?;
        Ok(Resolved::Contents(text.into_owned()))
    }

    fn allows_prompt(&self) -> bool {
        self.credentials.is_some()
    }
}

struct Args {
    command: String,
    input: PathBuf,
    output: Option<PathBuf>,
    credentials: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or("missing command")?;
    if command == "--help" || command == "-h" || command == "help" {
        return Ok(Args {
            command: "help".into(),
            input: PathBuf::new(),
            output: None,
            credentials: None,
        });
    }
    let mut input = None;
    let mut output = None;
    let mut credentials = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-o" | "--output" => {
                output = Some(PathBuf::from(args.next().ok_or("-o needs a path")?))
            }
            "--auth-user-pass" => {
                credentials = Some(PathBuf::from(
                    args.next().ok_or("--auth-user-pass needs a path")?,
                ))
            }
            "-h" | "--help" => command_help(),
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            a if input.is_none() => input = Some(PathBuf::from(a)),
            a => return Err(format!("unexpected argument {a}")),
        }
    }
    let input = input.ok_or("missing input file")?;
    match command.as_str() {
        "make" if output.is_none() => Err("make needs -o DISK".into()),
        "make" | "check" => Ok(Args {
            command,
            input,
            output,
            credentials,
        }),
        other => Err(format!("unknown command {other}")),
    }
}

fn command_help() -> ! {
    print!("{USAGE}");
    std::process::exit(0);
}

/// A failure with its exit code; the message is printed as `config-disk: <message>`.
struct Failure(u8, String);

fn refused(source: &Path, e: &ConfigError, resolver: Option<&FsResolver>) -> Failure {
    let mut message = format!("{}: {e}", source.display());
    if let (config::ErrorKind::File(kind), Some(r)) = (e.kind, resolver) {
        if let Some(last) = &r.last {
            if kind != FileErrorKind::NeedsPrompt {
                message.push_str(&format!(" ({})", last.display()));
            }
        }
        if kind == FileErrorKind::NeedsPrompt {
            message
                .push_str("\n  (or give the credentials file to the tool: --auth-user-pass FILE)");
        }
    }
    Failure(EXIT_REFUSED, message)
}

/// Parses a .ovpn with its files, as `make` does.
fn parse_ovpn(path: &Path, credentials: Option<&PathBuf>) -> Result<Parsed, Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| Failure(EXIT_IO, format!("{}: {e}", path.display())))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut resolver = FsResolver {
        dir,
        credentials: credentials.cloned(),
        last: None,
    };
    let mut parsed = config::parse_bytes(&bytes, &mut resolver)
        .map_err(|e| refused(path, &e, Some(&resolver)))?;
    if parsed.config.auth_user_pass == Some(AuthUserPass::Prompt) {
        if let Some(file) = credentials {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure(EXIT_IO, format!("{}: {e}", file.display())))?;
            let mut lines = text.lines();
            let (Some(username), Some(password)) =
                (lines.next().filter(|u| !u.is_empty()), lines.next())
            else {
                return Err(Failure(
                    EXIT_REFUSED,
                    format!(
                        "{}: needs a username line and a password line",
                        file.display()
                    ),
                ));
            };
            parsed.config.auth_user_pass = Some(AuthUserPass::Credentials(config::Credentials {
                username: username.to_string(),
                password: password.to_string(),
            }));
        }
    }
    Ok(parsed)
}

fn print_warnings(source: &Path, parsed: &Parsed) {
    for w in &parsed.warnings {
        eprintln!("config-disk: {}: warning: {w}", source.display());
    }
}

fn make(args: &Args) -> Result<(), Failure> {
    let parsed = parse_ovpn(&args.input, args.credentials.as_ref())?;
    print_warnings(&args.input, &parsed);
    let name = args
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = format!(
        "# oxvpn config disk made by config-disk from {}\n{}",
        name.replace(['\n', '\r'], " "),
        config::print(&parsed.config)
    );
    // The disk must be exactly what the image accepts: parse it the image's way before writing.
    let check =
        config::parse(&text, &mut InlineOnly).map_err(|e| refused(&args.input, &e, None))?;
    if check.config != parsed.config {
        return Err(Failure(
            EXIT_REFUSED,
            "internal error: the printed config does not parse back the same".into(),
        ));
    }
    let disk = config_disk::pad(&text).map_err(|e| Failure(EXIT_DISK, e.to_string()))?;
    let output = args
        .output
        .as_ref()
        .ok_or_else(|| Failure(EXIT_USAGE, "make needs -o DISK".into()))?;
    std::fs::write(output, &disk)
        .map_err(|e| Failure(EXIT_IO, format!("{}: {e}", output.display())))?;
    println!(
        "{}: {} bytes of config in {} sectors ({} bytes)",
        output.display(),
        text.len(),
        disk.len() / config_disk::SECTOR_SIZE,
        disk.len()
    );
    Ok(())
}

/// A disk image made by `make`: a NUL inside, a whole number of sectors, no UTF-16 mark.
fn looks_like_disk(bytes: &[u8]) -> bool {
    !bytes.starts_with(&[0xff, 0xfe])
        && !bytes.starts_with(&[0xfe, 0xff])
        && bytes.len().is_multiple_of(config_disk::SECTOR_SIZE)
        && bytes.contains(&0)
}

fn check(args: &Args) -> Result<(), Failure> {
    let bytes = std::fs::read(&args.input)
        .map_err(|e| Failure(EXIT_IO, format!("{}: {e}", args.input.display())))?;
    let (kind, parsed) = if looks_like_disk(&bytes) {
        let text = config_disk::read(&bytes)
            .map_err(|e| Failure(EXIT_DISK, format!("{}: {e}", args.input.display())))?;
        let parsed =
            config::parse(text, &mut InlineOnly).map_err(|e| refused(&args.input, &e, None))?;
        ("config disk", parsed)
    } else {
        (
            "config file",
            parse_ovpn(&args.input, args.credentials.as_ref())?,
        )
    };
    print_warnings(&args.input, &parsed);
    print!(
        "{}",
        summary::summary(&format!("{} ({kind})", args.input.display()), &parsed)
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("config-disk: {e}\n\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match args.command.as_str() {
        "help" => command_help(),
        "make" => make(&args),
        _ => check(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("config-disk: {message}");
            ExitCode::from(code)
        }
    }
}
