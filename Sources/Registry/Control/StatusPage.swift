/// The status page served at `/`: plain HTML, CSS and JavaScript reading the control API.
///
/// Its source is `StatusPage.html` beside this file, compiled into the binary by Package.swift's
/// `embedInCode` resource, so that an installed daemon serves it with no file at run time.
enum StatusPage {
    static let bytes: [UInt8] = PackageResources.StatusPage_html
}
