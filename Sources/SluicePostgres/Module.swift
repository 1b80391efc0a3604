import CLibPQ
public func _pqVersion() -> Int32 { PQlibVersion() }
