#![no_main]
// E-mail as the incident intake reads it: any bytes are a message or an error.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(mail) = farol_feeds::mail::parse(data) {
        let _ = mail.text.len() + mail.attachments.len() + mail.answers.len();
    }
});
