//! What the shim adds to a build-script run's environment whether it is cached or not
//! ([`Added`]): the C tools' identities and the debug prefix maps of the C flag
//! variables, and what the key says of them.

use crate::config::WrapperConfig;
use crate::key::{PathMap, c_tool_names, tool_identity};

/// What the shim adds to a run's environment, and what the key says of it.
pub(super) struct Added {
    /// The variables set for the run: the C and C++ flag variables with
    /// `-fdebug-prefix-map` for the roots after the user's flags (`key::debug_map_env`)
    /// for the compilers that take the flag.
    pub(super) vars: Vec<(String, String)>,
    /// The identities of the C tools the run may use (`key::c_tool_names`).
    pub(super) tools: Vec<(String, String)>,
    /// The flag variables that got the prefix maps (`CFLAGS`, `CXXFLAGS`).
    pub(super) takes: Vec<&'static str>,
    /// `vars` as the key takes them: which variables get the maps, and the maps by what
    /// they mean (`key::debug_map_meaning`), so that no machine path, nor the order of
    /// the paths' lengths, reaches the key. The user's own part is not in it: it is
    /// keyed when the run reads the variable, as any variable is.
    pub(super) keyed: Vec<(String, String)>,
}

impl Added {
    pub(super) fn new(cfg: &WrapperConfig, pm: &PathMap) -> Added {
        let vars = cfg.env.all();
        let path_var = cfg.env.path_var().map(|p| p.as_os_str());
        let memo = crate::private_dir::private_subdir("c-tools").ok();
        let tools: Vec<(String, String)> = c_tool_names(vars)
            .into_iter()
            .map(|n| {
                let id = tool_identity(&n, &cfg.cwd, path_var, memo.as_deref());
                (n, id)
            })
            .collect();
        // Debug information of the C and C++ it compiles names remapped roots, when
        // the compiler takes the flag.
        let private = crate::private_dir::private_subdir("c-compilers").ok();
        let takes: Vec<&'static str> = crate::key::compiler_commands(vars)
            .into_iter()
            .filter(|(_, command)| {
                let first = command.split_whitespace().next().unwrap_or("");
                let id = tools
                    .iter()
                    .find(|(n, _)| n == first)
                    .map_or("absent", |(_, id)| id.as_str());
                crate::key::compiler_takes_debug_map(command, id, &cfg.cwd, private.as_deref())
            })
            .map(|(flags, _)| flags)
            .collect();
        // No trim-paths variables of ours: the `cc` versions that read them turn them
        // into `-fmacro-prefix-map` too, and a C program's `__FILE__` would then print
        // what plain cargo's does not (and each such script would probe its compiler
        // for the two flags, on the build's critical path).
        let added = crate::key::debug_map_env(vars, &crate::key::debug_map_flags(pm), &takes);
        // The key takes which variable gets the maps and the maps by what they mean;
        // the user's own flags in it are keyed as every variable is, when the run reads
        // it (the observer records the value cargo gave, without the maps).
        let named: std::collections::BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| {
                let flags = k.contains("FLAGS");
                (k.clone(), if flags { String::new() } else { v.clone() })
            })
            .collect();
        let keyed = crate::key::debug_map_env(&named, &crate::key::debug_map_meaning(pm), &takes)
            .into_iter()
            .map(|(k, v)| (k, pm.normalize_text(&v)))
            .collect();
        Added {
            vars: added,
            tools,
            takes,
            keyed,
        }
    }
}
