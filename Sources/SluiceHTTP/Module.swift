import CCurl
import CSluiceShims
public func _curlVersion() -> String { String(cString: curl_version()) }
