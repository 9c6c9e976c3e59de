//! The same program under its long name, `kasetto`.

fn main() {
    kasetto::cli::main()
}
