fn main() {
    println!("shipdeck");
}
