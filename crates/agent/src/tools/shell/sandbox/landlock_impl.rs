//! The Landlock sandbox: a Landlock ruleset that allows writes only under the writable
//! directories (and to a few device files), and a new network namespace with only loopback.
//! Both are applied in the child between `fork` and `exec`; the ruleset is built in the parent so
//! the child only makes system calls.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use landlock::{
    ABI, AccessFs, BitFlags, CompatLevel, Compatible, RulesetAttr, RulesetCreated, RulesetCreatedAttr,
    path_beneath_rules,
};

use super::{SandboxError, SandboxSpec, child_error};

/// Device files every program expects to write.
const WRITABLE_DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"];

/// Checks once that a child can be confined: spawns `sh -c :` with the full set-up.
pub(super) fn probe() -> Result<(), String> {
    let dir = std::env::temp_dir();
    let spec = SandboxSpec { workspace: &dir, workdir: &dir, network: false, writable: &[], private_tmp: &dir };
    let mut command = std::process::Command::new("/bin/sh");
    command.arg("-c").arg(":").stdin(std::process::Stdio::null());
    confine(&mut command, &spec).map_err(|err| err.to_string())?;
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("a confined test command failed ({status})")),
        Err(err) => Err(err.to_string()),
    }
}

/// Makes `command` start confined as `spec` says.
pub(super) fn confine(command: &mut std::process::Command, spec: &SandboxSpec<'_>) -> Result<(), SandboxError> {
    let mut writable: Vec<PathBuf> = vec![spec.workspace.to_path_buf(), spec.private_tmp.to_path_buf()];
    writable.extend(spec.writable.iter().filter(|dir| dir.is_dir()).cloned());
    let mut ruleset = Some(ruleset(&writable)?);
    let network = spec.network;
    // SAFETY: the closure runs in the forked child before exec. It makes only system calls
    // (unshare, socket, ioctl, prctl, landlock_restrict_self) and allocates only to report an
    // error, which glibc's fork handlers make safe in the child.
    unsafe {
        command.pre_exec(move || {
            if !network {
                isolate_network()?;
            }
            if let Some(ruleset) = ruleset.take() {
                ruleset.restrict_self().map_err(|err| child_error("landlock", err))?;
            }
            Ok(())
        });
    }
    Ok(())
}

fn ruleset(writable: &[PathBuf]) -> Result<RulesetCreated, SandboxError> {
    let abi = kernel_abi().map_err(SandboxError::Setup)?;
    let write: BitFlags<AccessFs> = AccessFs::from_write(abi);
    let setup = |err: landlock::RulesetError| SandboxError::Setup(format!("landlock: {err}"));
    let devices: Vec<&str> =
        WRITABLE_DEVICES.iter().copied().filter(|dev| std::path::Path::new(dev).exists()).collect();
    landlock::Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(write)
        .map_err(setup)?
        .create()
        .map_err(setup)?
        .add_rules(path_beneath_rules(writable, write))
        .map_err(setup)?
        .add_rules(path_beneath_rules(devices, write & AccessFs::from_file(abi)))
        .map_err(setup)
}

/// The Landlock ABI the running kernel offers, asked directly so an unsupported kernel is an
/// error rather than a silently unenforced ruleset.
fn kernel_abi() -> Result<ABI, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer and the VERSION flag the call only returns a number.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version < 1 {
        return Err(format!("Landlock is not enabled in this kernel ({})", io::Error::last_os_error()));
    }
    Ok(ABI::from(i32::try_from(version).unwrap_or(i32::MAX)))
}

/// Moves the calling (child) process into a new network namespace, with a new user namespace
/// when it lacks the privilege to do so alone, and brings its loopback interface up.
fn isolate_network() -> io::Result<()> {
    // SAFETY: unshare takes only flags.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        // SAFETY: as above; the child is single-threaded, as a new user namespace requires.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
            return Err(child_error("cannot create a network namespace", io::Error::last_os_error()));
        }
    }
    bring_up_loopback();
    Ok(())
}

/// Sets `lo` up so servers a command starts on localhost work inside the sandbox. Failure only
/// leaves loopback down, which is still isolated, so it is ignored.
fn bring_up_loopback() {
    // SAFETY: a plain datagram socket, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return;
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: `request` names an interface and lives across both calls; the kernel reads and
    // writes only the ifreq it points to.
    unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) == 0 {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &request);
        }
        libc::close(fd);
    }
}
