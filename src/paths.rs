//! Platform directories. `$XDG_CONFIG_HOME`, `$XDG_DATA_HOME` and
//! `$XDG_STATE_HOME` are honoured on every platform; otherwise the
//! `directories` crate's platform defaults apply.

use std::path::PathBuf;

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "shipdeck")
}

fn xdg(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(|v| PathBuf::from(v).join("shipdeck"))
}

pub fn config_dir() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME").or_else(|| project().map(|p| p.config_dir().to_path_buf()))
}

pub fn data_dir() -> Option<PathBuf> {
    xdg("XDG_DATA_HOME").or_else(|| project().map(|p| p.data_dir().to_path_buf()))
}

/// Where logs go: the state dir where the platform has one, else the data dir.
pub fn state_dir() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME")
        .or_else(|| project().and_then(|p| p.state_dir().map(|d| d.to_path_buf())))
        .or_else(data_dir)
}

pub fn log_file() -> Option<PathBuf> {
    state_dir().map(|d| d.join("shipdeck.log"))
}
