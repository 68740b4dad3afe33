# Read the Vagrantfile the way Vagrant does (evaluate it as Ruby against Vagrant.configure), with
# a stand-in that records what it asks for: the synced folder (its guest path and rsync
# excludes) and the shell provisioner's inline command. The stock-kernel guest then syncs and
# provisions exactly as that file says, so the file and what was tested cannot drift apart.
#
#   ruby vagrant-provision.rb VAGRANTFILE   -> JSON on stdout
require "json"

# Records every setting; nested blocks (config.vm.provider "x" do |p| ... end) get recorders too.
class Recorder
  attr_reader :calls

  def initialize
    @calls = []
  end

  def method_missing(name, *args, **opts, &block)
    @calls << [name.to_s, args, opts]
    block.call(Recorder.new) if block
    self
  end

  def respond_to_missing?(*)
    true
  end
end

class VmRecorder < Recorder
  attr_reader :synced, :provisioners

  def initialize
    super
    @synced = []
    @provisioners = []
  end

  def synced_folder(src, dst, **opts)
    @synced << { "src" => src, "dst" => dst, "type" => opts[:type].to_s,
                 "exclude" => Array(opts[:rsync__exclude]) }
  end

  def provision(kind, **opts)
    @provisioners << { "kind" => kind.to_s, "inline" => opts[:inline], "path" => opts[:path] }
  end
end

class ConfigRecorder < Recorder
  attr_reader :vm

  def initialize
    super
    @vm = VmRecorder.new
  end
end

module Vagrant
  @configs = []

  def self.configure(_version)
    config = ConfigRecorder.new
    yield config
    @configs << config
  end

  def self.configs
    @configs
  end
end

path = ARGV.fetch(0) { abort "usage: ruby vagrant-provision.rb VAGRANTFILE" }
load File.expand_path(path)
vm = Vagrant.configs.fetch(0) { abort "#{path}: no Vagrant.configure block" }.vm
repo = vm.synced.find { |s| s["src"] == "." } or abort "#{path}: no synced folder for the project (\".\")"
shell = vm.provisioners.select { |p| p["kind"] == "shell" }
abort "#{path}: expected one shell provisioner with an inline command" unless
  shell.size == 1 && shell[0]["inline"].is_a?(String)
puts JSON.generate({ "guest_path" => repo["dst"], "sync_type" => repo["type"],
                     "rsync_exclude" => repo["exclude"], "inline" => shell[0]["inline"] })
