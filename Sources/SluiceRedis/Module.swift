import CHiredis
public let _hiredisMajor = HIREDIS_MAJOR
