// SPDX-License-Identifier: GPL-2.0

//! Module parameters (upstream `rust/kernel/module_param.rs` arrived after 6.12, whose
//! `module!` takes none): a `ulong` parameter, settable at load time (`insmod pktmap.ko
//! NAME=VALUE`) and, with write permission, at run time through
//! `/sys/module/pktmap/parameters/NAME`.
//!
//! [`module_param_ulong!`] emits what `module_param_cb()` emits in C: a `struct kernel_param`
//! in the `__param` section (the module loader parses load-time values through it and
//! `param_sysfs` exposes it) and the `parmtype`/`parm` `.modinfo` strings `modinfo` shows.
//!
//! C header: [`srctree/include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)

use core::cell::UnsafeCell;
use kernel::{bindings, ffi::c_ulong};

/// The value of a `ulong` module parameter.
///
/// # Invariants
///
/// The value is only written by the kernel's `param_set_ulong` (at load time, or by a write to
/// the sysfs file under the parameter lock) and by [`set`](Self::set); all are single aligned
/// word stores, and every read here is one volatile load (`READ_ONCE`).
#[repr(transparent)]
pub struct ParamUlong(UnsafeCell<c_ulong>);

// SAFETY: Every access is one aligned word load or store (type invariants), which cannot tear
// on the architectures Linux runs Rust on; readers accept any value that was stored.
unsafe impl Sync for ParamUlong {}

impl ParamUlong {
    /// A parameter whose default is `value`.
    pub const fn new(value: u64) -> Self {
        Self(UnsafeCell::new(value as c_ulong))
    }

    /// The current value (`READ_ONCE`).
    pub fn get(&self) -> u64 {
        // SAFETY: The cell is valid for the program's life; a volatile load is `READ_ONCE`,
        // racing only with the word stores of the type invariants.
        unsafe { self.0.get().read_volatile() as u64 }
    }

    /// Stores `value` (`WRITE_ONCE`), e.g. a default computed at module init.
    pub fn set(&self, value: u64) {
        // SAFETY: As in `get`, for a volatile store.
        unsafe { self.0.get().write_volatile(value as c_ulong) }
    }

    /// The value's address, for the `struct kernel_param`.
    pub const fn as_ptr(&self) -> *mut c_ulong {
        self.0.get()
    }
}

/// One `struct kernel_param` in the `__param` section.
#[repr(transparent)]
pub struct KernelParam(bindings::kernel_param);

// SAFETY: The kernel only reads the struct (the loader and `param_sysfs`); the value it points
// to is a `ParamUlong`, which is `Sync`.
unsafe impl Sync for KernelParam {}

impl KernelParam {
    /// A `ulong` parameter named `name`, stored in `value`, with sysfs permissions `perm`.
    ///
    /// # Safety
    ///
    /// `module` is this module's `__this_module`, and the result is placed in the `__param`
    /// section of this module exactly once per name (what [`module_param_ulong!`] does).
    pub const unsafe fn ulong(
        name: &'static core::ffi::CStr,
        value: &'static ParamUlong,
        perm: u16,
        module: *mut bindings::module,
    ) -> Self {
        Self(bindings::kernel_param {
            // `as_char_ptr` (the kernel's `char` is unsigned) is not `const`; the cast makes
            // the same pointer.
            #[allow(clippy::disallowed_methods)]
            name: name.as_ptr().cast(),
            mod_: module,
            ops: core::ptr::addr_of!(bindings::param_ops_ulong),
            perm,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: value.as_ptr().cast(),
            },
        })
    }
}

/// `N` bytes of `s` (which must be `N` bytes long), for `.modinfo` strings.
pub const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// `module_param_named(NAME, VALUE, ulong, PERM)` plus `MODULE_PARM_DESC(NAME, DESC)`:
/// exposes the [`ParamUlong`] static `VALUE` as module parameter `NAME`.
///
/// ```ignore
/// static PAGE_BUDGET: ParamUlong = ParamUlong::new(0);
/// module_param_ulong!(PAGE_BUDGET, "page_budget", 0o644, "pages all pools may hold");
/// ```
macro_rules! module_param_ulong {
    ($value:ident, $name:literal, $perm:expr, $desc:literal) => {
        const _: () = {
            #[cfg(not(MODULE))]
            compile_error!("module_param_ulong! supports loadable modules only");

            // Declared as a byte (only its address is used): `struct module` is not FFI-safe
            // for rustc (bindgen's empty `struct mod_arch_specific`).
            extern "C" {
                static __this_module: u8;
            }

            #[link_section = "__param"]
            #[used(compiler)]
            // SAFETY: `__this_module` is this module's (made by modpost), and this is the one
            // `kernel_param` named `$name` (a second one would clash at the `const` below).
            static PARAM: $crate::sys::module_param::KernelParam = unsafe {
                $crate::sys::module_param::KernelParam::ulong(
                    match core::ffi::CStr::from_bytes_with_nul(concat!($name, "\0").as_bytes()) {
                        Ok(name) => name,
                        Err(_) => panic!("parameter name with a NUL"),
                    },
                    &$value,
                    $perm,
                    core::ptr::addr_of!(__this_module).cast_mut().cast(),
                )
            };

            const PARMTYPE: &str = concat!("parmtype=", $name, ":ulong\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_PARMTYPE: [u8; PARMTYPE.len()] =
                $crate::sys::module_param::modinfo(PARMTYPE);

            const PARM: &str = concat!("parm=", $name, ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_PARM: [u8; PARM.len()] = $crate::sys::module_param::modinfo(PARM);
        };
    };
}
pub(crate) use module_param_ulong;
