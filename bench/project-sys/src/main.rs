//! Prints what the C libraries built by the build scripts say about themselves.

fn main() {
    let (mut major, mut minor, mut rev) = (0, 0, 0);
    // SAFETY: libgit2 writes three ints through valid pointers.
    unsafe { libgit2_sys::git_libgit2_version(&mut major, &mut minor, &mut rev) };
    println!("libgit2 {major}.{minor}.{rev}");
    // SAFETY: zlibVersion returns a static NUL-terminated string.
    let z = unsafe { std::ffi::CStr::from_ptr(libz_sys::zlibVersion()) };
    println!("zlib {}", z.to_string_lossy());
    let packed = zstd::encode_all(&b"cargo-xcache cargo-xcache cargo-xcache"[..], 3).unwrap();
    let back = zstd::decode_all(&packed[..]).unwrap();
    println!("zstd {} -> {} -> {} bytes", back.len(), packed.len(), back.len());
}
