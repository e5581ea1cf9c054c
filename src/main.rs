fn main() -> std::process::ExitCode {
    sim7k::cli::main()
}
