//! Attack: a component that embeds a valid manifest but does not implement the
//! runbook world: it exports `greet` from another package, not `run`. The host
//! must get past the manifest, then refuse the component as not a runbook,
//! without running any of it.

wit_bindgen::generate!({
    inline: "
        package evil:other;

        world other {
            export greet: func() -> string;
        }
    ",
});

// The manifest, embedded as `runbook_sdk::runbook!` embeds it.
#[unsafe(link_section = "runbook-manifest")]
#[used]
static RUNBOOK_MANIFEST: [u8; include_bytes!("../runbook.toml").len()] =
    *include_bytes!("../runbook.toml");

struct Other;

impl Guest for Other {
    fn greet() -> String {
        "not a runbook".to_owned()
    }
}

export!(Other);
