// SPDX-License-Identifier: GPL-2.0

//! Module parameters (7.3's upstream `rust/kernel/module_param.rs` and `module!`'s `params`
//! are load-time only: `perm: 0`, not in sysfs, set once): a `ulong` parameter, settable at load time (`insmod pktmap.ko
//! NAME=VALUE`) and, with write permission, at run time through
//! `/sys/module/pktmap/parameters/NAME`.
//!
//! [`module_param_ulong!`] emits what `module_param_cb()` emits in C: a `struct kernel_param`
//! in the `__param` section (the module loader parses load-time values through it and
//! `param_sysfs` exposes it) and the `parmtype`/`parm` `.modinfo` strings `modinfo` shows.
//!
//! C header: [`srctree/include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)

use core::sync::atomic::Ordering;
use core::{cell::UnsafeCell, marker::PhantomData, ptr::null_mut, sync::atomic::AtomicPtr};
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_ulong},
    sync::Arc,
};

/// Told of every run-time write of a parameter (through sysfs), after it took effect.
pub trait OnSet: Send + Sync + 'static {
    /// The parameter has a new value.
    fn on_set(&self);
}

/// The listener of a parameter nobody listens to.
pub enum NoListener {}

impl OnSet for NoListener {
    fn on_set(&self) {
        match *self {}
    }
}

/// The value of a `ulong` module parameter, and who is told when it is written at run time
/// ([`listen`](Self::listen)).
///
/// # Invariants
///
/// The value is only written by the kernel's `param_set_ulong` (at load time, or by a write to
/// the sysfs file under the parameter lock) and by [`set`](Self::set); all are single aligned
/// word stores, and every read here is one volatile load (`READ_ONCE`). `listener` is null or
/// owns one reference of an `Arc<T>`, and is changed to null only under the module's
/// parameter lock (`kernel_param_lock`), which every sysfs write holds across its `set`.
#[repr(C)]
pub struct ParamUlong<T: OnSet = NoListener> {
    /// First, so the `struct kernel_param`'s `arg` points to the `unsigned long` itself.
    value: UnsafeCell<c_ulong>,
    listener: AtomicPtr<T>,
}

// SAFETY: Every access to the value is one aligned word load or store (type invariants),
// which cannot tear on the architectures Linux runs Rust on; readers accept any value that
// was stored. The listener is an atomic pointer to a `Send + Sync` value.
unsafe impl<T: OnSet> Sync for ParamUlong<T> {}

impl<T: OnSet> ParamUlong<T> {
    /// A parameter whose default is `value`.
    pub const fn new(value: u64) -> Self {
        Self {
            value: UnsafeCell::new(value as c_ulong),
            listener: AtomicPtr::new(null_mut()),
        }
    }

    /// The current value (`READ_ONCE`).
    pub fn get(&self) -> u64 {
        // SAFETY: The cell is valid for the program's life; a volatile load is `READ_ONCE`,
        // racing only with the word stores of the type invariants.
        unsafe { self.value.get().read_volatile() as u64 }
    }

    /// Stores `value` (`WRITE_ONCE`), e.g. a default computed at module init.
    pub fn set(&self, value: u64) {
        // SAFETY: As in `get`, for a volatile store.
        unsafe { self.value.get().write_volatile(value as c_ulong) }
    }

    /// The value's address, for the `struct kernel_param`.
    pub const fn as_ptr(&self) -> *mut c_ulong {
        self.value.get()
    }

    /// From now on, every run-time write of the parameter calls `listener.on_set()` (in the
    /// writer's context, under the parameter lock), until [`unlisten`](Self::unlisten).
    /// Replaces (and drops) an earlier listener.
    pub fn listen(&self, listener: Arc<T>) {
        let old = self
            .listener
            .swap(Arc::into_raw(listener).cast_mut(), Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: A non-null listener owns one reference (type invariants), now ours.
            drop(unsafe { Arc::from_raw(old) });
        }
    }

    /// Stops telling the listener, waiting for a write that is telling it now (the module's
    /// parameter lock), and drops it. Call it before the listener may go away (module exit:
    /// the parameter's sysfs file outlives `exit`).
    pub fn unlisten(&self, module: &'static kernel::ThisModule) {
        // SAFETY: `module` is this module, alive while its code runs; the lock is the one
        // every sysfs write of its parameters holds across `set`.
        unsafe { bindings::kernel_param_lock(module.as_ptr()) };
        let old = self.listener.swap(null_mut(), Ordering::AcqRel);
        // SAFETY: Taken above.
        unsafe { bindings::kernel_param_unlock(module.as_ptr()) };
        if !old.is_null() {
            // SAFETY: A non-null listener owns one reference (type invariants), now ours, and
            // no `set` can reach it any more.
            drop(unsafe { Arc::from_raw(old) });
        }
    }

    fn notify(&self) {
        let listener = self.listener.load(Ordering::Acquire);
        // SAFETY: Called from `set` under the parameter lock, so a non-null listener is alive
        // (only `unlisten` clears it, under that lock, before dropping its reference).
        if let Some(l) = unsafe { listener.as_ref() } {
            l.on_set();
        }
    }
}

/// The `kernel_param_ops` of a `ulong` parameter whose writes are told to `T`.
struct Ops<T: OnSet>(PhantomData<T>);

impl<T: OnSet> Ops<T> {
    const VALUE: bindings::kernel_param_ops = bindings::kernel_param_ops {
        flags: 0,
        set: Some(Self::set),
        get: Some(bindings::param_get_ulong),
        free: None,
    };
    /// Promoted to a `'static` because `VALUE` is a constant.
    const TABLE: &'static bindings::kernel_param_ops = &Self::VALUE;

    /// `param_set_ulong`, then the listener.
    ///
    /// # Safety
    ///
    /// Called by the kernel for a parameter made by [`KernelParam::ulong`] with this `T`
    /// (so `kp->arg` is a `ParamUlong<T>`), with `val` a NUL-terminated string.
    unsafe extern "C" fn set(val: *const c_char, kp: *const bindings::kernel_param) -> c_int {
        // SAFETY: The caller's contract; `param_set_ulong` parses `val` into `*kp->arg`.
        let rc = unsafe { bindings::param_set_ulong(val, kp) };
        if rc == 0 {
            // SAFETY: `kp->arg` points to the `ParamUlong<T>` (`repr(C)`, value first) the
            // parameter was made with, a `'static`.
            let param = unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<ParamUlong<T>>() };
            param.notify();
        }
        rc
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
    pub const unsafe fn ulong<T: OnSet>(
        name: &'static core::ffi::CStr,
        value: &'static ParamUlong<T>,
        perm: u16,
        module: *mut bindings::module,
    ) -> Self {
        Self(bindings::kernel_param {
            // `as_char_ptr` (the kernel's `char` is unsigned) is not `const`; the cast makes
            // the same pointer.
            #[allow(clippy::disallowed_methods)]
            name: name.as_ptr().cast(),
            mod_: module,
            ops: Ops::<T>::TABLE,
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
